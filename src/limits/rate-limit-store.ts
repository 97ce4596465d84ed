/**
 * A fixed-window counter store for @fastify/rate-limit on the gateway's Redis client. It fails
 * closed: when Redis cannot be reached, the request is refused with 503 `store_unavailable`
 * instead of running unlimited.
 */
import { storeUnavailable } from '../lib/store-unavailable.js'
import { countInWindowLua } from '../lib/count-in-window-lua.js'
import { defineScripts, type RedisClient } from '../lib/redis-client.js'

/** Counts a hit in KEYS[1]'s window of ARGV[1] ms. Returns {count, ttl ms}. */
export const fixedWindowLua = `${countInWindowLua}
local n, ttl = count_in_window(KEYS[1], ARGV[1])
return {n, ttl}
`

type IncrCallback = (err: Error | null, result?: { current: number, ttl: number }) => void

interface WindowCommand { gwFixedWindow: (key: string, windowMs: number) => Promise<[number, number]> }

export const RATE_LIMIT_PREFIX = 'gw:rl:'

/** Builds the store class @fastify/rate-limit instantiates (`store` option). */
export function redisRateLimitStore (redis: RedisClient) {
  const client = defineScripts<WindowCommand>(redis, {
    gwFixedWindow: { numberOfKeys: 1, lua: fixedWindowLua }
  })
  return class RedisRateLimitStore {
    incr (key: string, callback: IncrCallback, timeWindow: number): void {
      client.gwFixedWindow(RATE_LIMIT_PREFIX + key, timeWindow).then(
        ([current, ttl]) => callback(null, { current, ttl }),
        (err: unknown) => callback(storeUnavailable(err))
      )
    }

    child (): RedisRateLimitStore {
      return this
    }
  }
}
