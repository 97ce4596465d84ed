/**
 * Creates a session record and adds it to the user's index, pruning ids whose record expired.
 * KEYS[1] session record, KEYS[2] the user's session index (same hash tag, so one slot).
 * ARGV[1] session id, ARGV[2] TTL in seconds, ARGV[3] key prefix of the user's session records,
 * ARGV[4..] field/value pairs of the record.
 */
export const createSessionLua = `
local ttl = tonumber(ARGV[2])
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[3] .. sid) == 0 then redis.call('SREM', KEYS[2], sid) end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('TTL', KEYS[2]) < ttl then redis.call('EXPIRE', KEYS[2], ttl) end
return 1
`
