/**
 * The hot-path session check of every authenticated request, and (on proxied routes) the per-user
 * rate-limit counter in the same round trip: every key carries the user's hash tag.
 * KEYS[1] session record; KEYS[2] the user's live state (active, roles, when last confirmed);
 * KEYS[3] the user's state-refresh lease; KEYS[4] (optional) the user's fixed-window counter.
 * ARGV[1] now (ms), ARGV[2] touch interval (ms), ARGV[3] window (ms), ARGV[4] USER_STATE_TTL (ms),
 * ARGV[5] lease (ms; 0: never take it, the caller cannot refresh).
 * Records `last used` at most once per touch interval so most requests only read.
 * Returns {alive, count, ttl ms, phase, leased, roles JSON, checked}; a dead session is not counted.
 * `checked` (when the state was last confirmed, ms; '' when unknown) lets the per-replica session
 * cache (src/sessions/session-cache.ts) tell the phase itself while it holds the answer.
 * A deactivated user's sessions are dead whatever their record says.
 * phase: 0 the state is fresh (younger than half the TTL); 1 a refresh is due (the last known
 * state still holds while one replica reads it again); 2 the state is unknown or older than the
 * TTL (it must not be used): a change made in the users service holds within USER_STATE_TTL. `leased` is 1 when this
 * caller took the refresh lease (SET NX): it is the one replica that asks the users service.
 */
import { countInWindowLua } from '../../lib/count-in-window-lua.js'

export const checkSessionLua = `${countInWindowLua}
local used = redis.call('HGET', KEYS[1], 'used')
if not used then return {0, 0, 0, 0, 0, ''} end
local st = redis.call('HMGET', KEYS[2], 'active', 'roles', 'checked')
if st[1] == '0' then return {0, 0, 0, 0, 0, ''} end
local now = tonumber(ARGV[1])
if now - tonumber(used) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'used', ARGV[1])
end
local phase = 2
if st[3] then
  local age = now - tonumber(st[3])
  local ttl = tonumber(ARGV[4])
  if age < ttl / 2 then phase = 0 elseif age < ttl then phase = 1 end
end
local leased = 0
if phase > 0 and tonumber(ARGV[5]) > 0 and redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[5]) then leased = 1 end
local roles = st[2] or ''
local checked = st[3] or ''
if #KEYS < 4 then return {1, 0, 0, phase, leased, roles, checked} end
local n, ttl = count_in_window(KEYS[4], ARGV[3])
return {1, n, ttl, phase, leased, roles, checked}
`
