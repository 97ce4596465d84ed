/**
 * The hot-path check of a machine client's access token, and its per-client rate-limit counter,
 * in one round trip: both keys carry the client's hash tag (one Redis Cluster slot).
 * KEYS[1] the client record; KEYS[2] the client's fixed-window counter; KEYS[3] (optional) the
 * revocation mark of the presented token. ARGV[1] window (ms).
 * Returns {0, 0, 0} for a deleted client or a revoked token (not counted), else {1, count, ttl ms}.
 */
import { countInWindowLua } from '../../lib/count-in-window-lua.js'

export const checkClientLua = `${countInWindowLua}
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0} end
if KEYS[3] ~= nil and redis.call('EXISTS', KEYS[3]) == 1 then return {0, 0, 0} end
local n, ttl = count_in_window(KEYS[2], ARGV[1])
return {1, n, ttl}
`
