/**
 * Revokes one session. KEYS[1] session record, KEYS[2] the user's index. ARGV[1] session id.
 * Returns 1 when the session existed.
 */
export const revokeSessionLua = `
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return n
`

/**
 * Revokes every session of a user. KEYS[1] the user's index. ARGV[1] key prefix of the records.
 * Returns how many live sessions were revoked.
 */
export const revokeAllSessionsLua = `
local n = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. sid)
end
redis.call('DEL', KEYS[1])
return n
`
