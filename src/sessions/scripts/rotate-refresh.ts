/**
 * Refresh token rotation, reuse grace and reuse detection as one atomic step (docs/tokens-and-sessions.md), with
 * the session's refresh limit counted in the same step.
 * KEYS[1] session record, KEYS[2] the user's session index, KEYS[3] the session's refresh counter
 * (all three share the user's hash tag, so one Redis Cluster slot); KEYS[4] the user's live state: its
 * roles, when recorded, are the ones new tokens carry (docs/live-user-state.md), and a deactivated user has no session.
 * ARGV[1] jti of the presented refresh token, ARGV[2] jti of the new one, ARGV[3] the new token sealed
 * under a key derived from the presented one (src/sessions/sealed-successor.ts: Redis never holds a usable token),
 * ARGV[4] now (ms), ARGV[5] grace (ms), ARGV[6] refresh TTL (s), ARGV[7] session id,
 * ARGV[8] rotations allowed per window, ARGV[9] window (ms).
 * Returns {outcome, count, window ttl ms, token, username, roles} where outcome is one of:
 *   'missing'  no session (revoked, expired or lost);
 *   'reused'   a token of the session older than the previous one, or the previous one after the
 *              grace window: the session is revoked. Reuse detection never waits for the limit;
 *   'grace'    the previous token within the grace window of its first use: the same (sealed) token
 *              the first call got, so concurrent calls converge on one chain. Counted like a
 *              rotation: each grace answer mints an access token, so it is 'limited' past the limit;
 *   'limited'  the current token, but the session rotated too often in the window;
 *   'rotated'  the current token: the chain moves on to the new token.
 */
import { countInWindowLua } from '../../lib/count-in-window-lua.js'

export const rotateRefreshLua = `${countInWindowLua}
local s = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'prev_at', 'next', 'un', 'roles')
if not s[1] then return {'missing', 0, 0} end
local u = redis.call('HMGET', KEYS[4], 'active', 'roles')
if u[1] == '0' then return {'missing', 0, 0} end
local roles = u[2] or s[6]
local now = tonumber(ARGV[4])
if ARGV[1] ~= s[1] then
  if s[2] and ARGV[1] == s[2] and now - tonumber(s[3]) < tonumber(ARGV[5]) then
    local count, window = count_in_window(KEYS[3], ARGV[9])
    if count > tonumber(ARGV[8]) then return {'limited', count, window} end
    return {'grace', count, window, s[4], s[5], roles}
  end
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[7])
  return {'reused', 0, 0}
end
local count, window = count_in_window(KEYS[3], ARGV[9])
if count > tonumber(ARGV[8]) then return {'limited', count, window} end
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1], 'prev_at', ARGV[4], 'next', ARGV[3], 'used', ARGV[4])
local ttl = tonumber(ARGV[6])
redis.call('EXPIRE', KEYS[1], ttl)
if redis.call('TTL', KEYS[2]) < ttl then redis.call('EXPIRE', KEYS[2], ttl) end
return {'rotated', count, window, ARGV[3], s[5], roles}
`
