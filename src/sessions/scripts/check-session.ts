/**
 * The hot-path session check of every authenticated request: is the session alive? Also records
 * `last used`, at most once per touch interval so most requests only read.
 * KEYS[1] session record. ARGV[1] now (ms), ARGV[2] touch interval (ms).
 * Returns 1 when the session is alive, 0 when it is missing (revoked, expired or lost).
 */
export const checkSessionLua = `
local used = redis.call('HGET', KEYS[1], 'used')
if not used then return 0 end
if tonumber(ARGV[1]) - tonumber(used) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'used', ARGV[1])
end
return 1
`
