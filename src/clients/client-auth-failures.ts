/**
 * Failed client authentications at the token endpoint, counted per client IP (bucketed like every
 * per-IP limit) in a one-minute window, like failed logins: past the limit the IP is refused (429)
 * before any secret is checked, even a right one, until the window ends. Only failures count, so a
 * busy service behind one address is never limited for getting tokens.
 */
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import { fixedWindowLua, RATE_LIMIT_PREFIX } from '../limits/rate-limit-store.js'
import type { RedisClient } from '../sessions/session-store.js'

/** KEYS[1] the counter. Returns {count, ttl ms} without counting. */
const peekWindowLua = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
return {n, ttl}
`

interface FailureCommands {
  gwPeekClientAuthFailures: (key: string) => Promise<[number, number]>
  gwCountClientAuthFailure: (key: string, windowMs: number) => Promise<[number, number]>
}

export interface FailureWindow { count: number, ttlMs: number }

export class ClientAuthFailures {
  readonly #redis: RedisClient & FailureCommands

  constructor (redis: RedisClient, readonly limit: number, readonly windowMs: number) {
    redis.defineCommand('gwPeekClientAuthFailures', { numberOfKeys: 1, lua: peekWindowLua })
    redis.defineCommand('gwCountClientAuthFailure', { numberOfKeys: 1, lua: fixedWindowLua })
    this.#redis = redis as RedisClient & FailureCommands
  }

  static key (ipBucket: string): string {
    return `${RATE_LIMIT_PREFIX}client_auth:${ipBucket}`
  }

  async peek (ipBucket: string): Promise<FailureWindow> {
    const [count, ttlMs] = await orStoreUnavailable(this.#redis.gwPeekClientAuthFailures(ClientAuthFailures.key(ipBucket)))
    return { count, ttlMs }
  }

  async count (ipBucket: string): Promise<FailureWindow> {
    const [count, ttlMs] = await orStoreUnavailable(this.#redis.gwCountClientAuthFailure(ClientAuthFailures.key(ipBucket), this.windowMs))
    return { count, ttlMs }
  }
}
