/**
 * The one fixed-window counter of every limit, as a Lua function that the scripts embed:
 * counts a hit and returns the count and the window's remaining milliseconds. The key gets its
 * TTL when the window opens (or if it ever lost it), so no counter outlives its window.
 */
export const countInWindowLua = `
local function count_in_window(key, window_ms)
  local n = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if n == 1 or ttl < 0 then
    redis.call('PEXPIRE', key, window_ms)
    ttl = tonumber(window_ms)
  end
  return n, ttl
end
`
