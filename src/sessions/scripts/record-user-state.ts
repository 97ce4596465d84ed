/**
 * Records a user's state as the users service gave it, and revokes sessions, as one atomic step.
 * KEYS[1] the user's state, KEYS[2] the user's session index (same hash tag, so one slot).
 * ARGV[1] when the state was read (ms: the moment before the read started), ARGV[2] active '1'/'0' ('': revoke only, no state),
 * ARGV[3] roles (JSON), ARGV[4] state TTL in Redis (s), ARGV[5] key prefix of the user's session
 * records, ARGV[6] revoke 'none' | 'all' | 'others', ARGV[7] the session id that 'others' keeps.
 * A state read earlier than the one recorded never overwrites it (a slow login or refresh racing
 * a change). Revocation happens either way: it is never the unsafe direction.
 * Returns {written 0/1, the previous roles JSON or '', sessions revoked}.
 */
export const recordUserStateLua = `
local prev = redis.call('HMGET', KEYS[1], 'roles', 'checked')
local written = 0
if ARGV[2] ~= '' and (not prev[2] or tonumber(prev[2]) <= tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'active', ARGV[2], 'roles', ARGV[3], 'checked', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  written = 1
end
local revoked = 0
if ARGV[6] ~= 'none' then
  for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if ARGV[6] == 'all' or sid ~= ARGV[7] then
      revoked = revoked + redis.call('DEL', ARGV[5] .. sid)
      redis.call('SREM', KEYS[2], sid)
    end
  end
end
return {written, prev[1] or '', revoked}
`
