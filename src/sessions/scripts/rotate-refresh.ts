/**
 * Refresh token rotation, reuse grace and reuse detection as one atomic step (contract 4.2).
 * KEYS[1] session record, KEYS[2] the user's session index.
 * ARGV[1] jti of the presented refresh token, ARGV[2] jti of the new one, ARGV[3] the new token,
 * ARGV[4] now (ms), ARGV[5] grace (ms), ARGV[6] refresh TTL (s), ARGV[7] session id.
 * Returns one of:
 *   {'rotated', newToken, username, roles}  the presented token was current: the chain moves on;
 *   {'grace', token, username, roles}       it was the one just before, within the grace window:
 *                                           the same token the first call got;
 *   {'reused'}                              any other token of the session: the session is revoked;
 *   {'missing'}                             no session (revoked, expired or lost).
 */
export const rotateRefreshLua = `
local s = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'prev_at', 'next', 'un', 'roles')
if not s[1] then return {'missing'} end
local now = tonumber(ARGV[4])
if ARGV[1] == s[1] then
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1], 'prev_at', ARGV[4], 'next', ARGV[3], 'used', ARGV[4])
  local ttl = tonumber(ARGV[6])
  redis.call('EXPIRE', KEYS[1], ttl)
  if redis.call('TTL', KEYS[2]) < ttl then redis.call('EXPIRE', KEYS[2], ttl) end
  return {'rotated', ARGV[3], s[5], s[6]}
end
if s[2] and ARGV[1] == s[2] and now - tonumber(s[3]) <= tonumber(ARGV[5]) then
  return {'grace', s[4], s[5], s[6]}
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[7])
return {'reused'}
`
