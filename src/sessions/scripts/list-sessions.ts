/**
 * The user's live sessions, dropping index entries whose record is gone.
 * KEYS[1] the user's session index. ARGV[1] key prefix of the user's session records.
 * Returns {{sid, created, used, ip, ua}, ...}.
 */
export const listSessionsLua = `
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HMGET', ARGV[1] .. sid, 'created', 'used', 'ip', 'ua')
  if h[1] then
    table.insert(out, {sid, h[1], h[2], h[3] or '', h[4] or ''})
  else
    redis.call('SREM', KEYS[1], sid)
  end
end
return out
`
