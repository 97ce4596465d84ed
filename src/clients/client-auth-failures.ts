/**
 * Failed client authentications at the token endpoint, counted per client IP (bucketed like every
 * per-IP limit) in a one-minute window, like failed logins. An attempt is reserved atomically
 * *before* its secret is compared, as login reserves before hashing: a concurrent burst of wrong
 * secrets cannot slip a right one past the limit. A right secret gives its reservation back, so a
 * busy service behind one address is limited only by its in-flight requests, never for getting
 * tokens; past the limit the IP is refused (429) before any secret is compared, even a right one,
 * until the window ends.
 */
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import { countInWindowLua } from '../lib/count-in-window-lua.js'
import { releaseAttemptLua } from '../limits/login-lockout.js'
import { RATE_LIMIT_PREFIX } from '../limits/rate-limit-store.js'
import { defineScripts, type RedisClient } from '../lib/redis-client.js'

/**
 * KEYS[1] the counter. ARGV[1] window (ms), ARGV[2] limit.
 * Returns {1, count, ttl ms} when reserved, {0, count, ttl ms} when the limit is reached.
 */
const reserveLua = `${countInWindowLua}
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[2]) then return {0, n, redis.call('PTTL', KEYS[1])} end
local count, ttl = count_in_window(KEYS[1], ARGV[1])
return {1, count, ttl}
`

interface FailureCommands {
  gwReserveClientAuth: (key: string, windowMs: number, limit: number) => Promise<[number, number, number]>
  gwReleaseClientAuth: (key: string) => Promise<number>
}

export type ClientAuthReservation =
  | { reserved: true, count: number, release: () => Promise<void> }
  | { reserved: false, retryAfterSeconds: number }

export class ClientAuthFailures {
  readonly #redis: RedisClient & FailureCommands

  constructor (redis: RedisClient, readonly limit: number, readonly windowMs: number) {
    this.#redis = defineScripts<FailureCommands>(redis, {
      gwReserveClientAuth: { numberOfKeys: 1, lua: reserveLua },
      gwReleaseClientAuth: { numberOfKeys: 1, lua: releaseAttemptLua }
    })
  }

  static key (ipBucket: string): string {
    return `${RATE_LIMIT_PREFIX}client_auth:${ipBucket}`
  }

  /** Counts an attempt as failed until `release()` says its secret was right. */
  async reserve (ipBucket: string): Promise<ClientAuthReservation> {
    const key = ClientAuthFailures.key(ipBucket)
    const [reserved, count, ttlMs] = await orStoreUnavailable(this.#redis.gwReserveClientAuth(key, this.windowMs, this.limit))
    if (reserved !== 1) return { reserved: false, retryAfterSeconds: Math.max(1, Math.ceil(ttlMs / 1000)) }
    return {
      reserved: true,
      count,
      release: async () => { await this.#redis.gwReleaseClientAuth(key).catch(() => { /* the window ends anyway */ }) }
    }
  }
}
