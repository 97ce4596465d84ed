/**
 * The hot-path session check of every authenticated request, and (on proxied routes) the per-user
 * rate-limit counter in the same round trip: both keys carry the user's hash tag.
 * KEYS[1] session record; KEYS[2] (optional) the user's fixed-window counter.
 * ARGV[1] now (ms), ARGV[2] touch interval (ms), ARGV[3] window (ms).
 * Records `last used` at most once per touch interval so most requests only read.
 * Returns {alive} or, with a counter, {alive, count, ttl ms}; a dead session is not counted.
 */
import { countInWindowLua } from '../../limits/count-in-window-lua.js'

export const checkSessionLua = `${countInWindowLua}
local used = redis.call('HGET', KEYS[1], 'used')
if not used then return {0, 0, 0} end
if tonumber(ARGV[1]) - tonumber(used) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'used', ARGV[1])
end
if #KEYS < 2 then return {1} end
local n, ttl = count_in_window(KEYS[2], ARGV[3])
return {1, n, ttl}
`
