/**
 * Login lockout in the manner of django-axes: consecutive failures per (normalized username,
 * client IP) pair. An attempt is reserved atomically *before* the password is checked, so parallel
 * guesses cannot slip past the threshold; a success clears the pair; an attempt that ended in
 * neither (the users service was down) gives its reservation back.
 */
import { createHash } from 'node:crypto'
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import { defineScripts, type RedisClient } from '../lib/redis-client.js'

/**
 * KEYS[1] the pair's failure counter. ARGV[1] threshold, ARGV[2] cool-off (s).
 * Returns {1, attempt} when the attempt may go on, {0, ttl ms} when the pair is locked.
 */
export const reserveAttemptLua = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, n}
`

/** Gives back a reservation that was neither a success nor a failure. */
export const releaseAttemptLua = `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 1
`

interface LockoutCommands {
  gwReserveLogin: (key: string, threshold: number, seconds: number) => Promise<[number, number]>
  gwReleaseLogin: (key: string) => Promise<number>
}

/** Case-folded and trimmed, so `Alice ` and `alice` are one pair. */
export function normalizeUsername (username: string): string {
  return username.normalize('NFKC').trim().toLowerCase()
}

export type Reservation =
  | { locked: false, attempt: number, key: string }
  | { locked: true, retryAfterSeconds: number }

export class LoginLockout {
  readonly #redis: RedisClient & LockoutCommands

  constructor (redis: RedisClient, readonly threshold: number, readonly seconds: number) {
    this.#redis = defineScripts<LockoutCommands>(redis, {
      gwReserveLogin: { numberOfKeys: 1, lua: reserveAttemptLua },
      gwReleaseLogin: { numberOfKeys: 1, lua: releaseAttemptLua }
    })
  }

  /** The pair's key: a hash, so no username is stored and any username is a safe key. */
  static key (username: string, ipBucket: string): string {
    const digest = createHash('sha256').update(`${normalizeUsername(username)}\n${ipBucket}`).digest('base64url')
    return `gw:lockout:{${digest.slice(0, 22)}}`
  }

  async reserve (username: string, ipBucket: string): Promise<Reservation> {
    const key = LoginLockout.key(username, ipBucket)
    const [allowed, value] = await orStoreUnavailable(this.#redis.gwReserveLogin(key, this.threshold, this.seconds))
    if (allowed === 1) return { locked: false, attempt: value, key }
    return { locked: true, retryAfterSeconds: Math.max(1, Math.ceil(value / 1000)) }
  }

  async succeeded (key: string): Promise<void> {
    await orStoreUnavailable(this.#redis.del(key))
  }

  async release (key: string): Promise<void> {
    await this.#redis.gwReleaseLogin(key).catch(() => { /* the counter expires anyway */ })
  }
}
