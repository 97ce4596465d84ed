/**
 * What second factors keep in Redis, all short-lived: the `mfa_token` between a password and its
 * second factor, single-use marks of TOTP steps and recovery codes (so two requests racing with
 * one code cannot both pass), and WebAuthn challenges. Nothing here is a factor: losing it ends
 * logins in progress, never a factor.
 */
import { createHash, randomBytes } from 'node:crypto'
import { defineScripts, type RedisClient } from '../lib/redis-client.js'
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import type { FactorMethod } from './factors.js'

/** Seconds an `mfa_token` lives. */
export const MFA_TOKEN_TTL = 300
/** Tries one `mfa_token` takes; the next one finds it gone. */
export const MFA_TOKEN_TRIES = 5
/** Seconds a WebAuthn challenge may be answered in. */
export const CHALLENGE_TTL = 300

/** A password checked, a second factor to come. */
export interface PendingLogin {
  userId: string
  username: string
  roles: string[]
  /** The login's `cookie` flag: the second step answers the same way. */
  cookie: boolean
  methods: FactorMethod[]
  /** When the identity backend gave the roles (ms). */
  checkedAt: number
}

/**
 * One try on a token: counts it and gives the pending login, or null when the token is unknown,
 * expired or out of tries (then it is gone).
 */
const tryTokenLua = `
local data = redis.call('HGET', KEYS[1], 'login')
if not data then return false end
local n = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if n > tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return false
end
return data
`

interface MfaCommands {
  gwTryMfaToken: (key: string, maxTries: number) => Promise<string | null>
}

const digest = (value: string): string => createHash('sha256').update(value).digest('base64url')

export class MfaState {
  readonly #redis: RedisClient & MfaCommands

  constructor (redis: RedisClient) {
    this.#redis = defineScripts<MfaCommands>(redis, { gwTryMfaToken: { numberOfKeys: 1, lua: tryTokenLua } })
  }

  /** Only the token's hash names the key: a key listing shows no usable token. */
  static tokenKey (token: string): string {
    return `gw:mfa:{${digest(token).slice(0, 22)}}`
  }

  async issueToken (login: PendingLogin): Promise<string> {
    const token = randomBytes(32).toString('base64url')
    const key = MfaState.tokenKey(token)
    await orStoreUnavailable(this.#redis.multi().hset(key, 'login', JSON.stringify(login), 'tries', '0').expire(key, MFA_TOKEN_TTL).exec())
    return token
  }

  async tryToken (token: string): Promise<PendingLogin | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null
    const data = await orStoreUnavailable(this.#redis.gwTryMfaToken(MfaState.tokenKey(token), MFA_TOKEN_TRIES))
    return data === null ? null : JSON.parse(data) as PendingLogin
  }

  /** The pending login of a token without counting a try (passkey options for its second step), or null. */
  async peekToken (token: string): Promise<PendingLogin | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null
    const data = await orStoreUnavailable(this.#redis.hget(MfaState.tokenKey(token), 'login'))
    return data === null ? null : JSON.parse(data) as PendingLogin
  }

  /** Ends the token; false when another request ended it first (it is single use). */
  async consumeToken (token: string): Promise<boolean> {
    return await orStoreUnavailable(this.#redis.del(MfaState.tokenKey(token))) === 1
  }

  /**
   * Claims a one-time value (a TOTP step of a factor, a recovery code) for `ttl` seconds: true for
   * the first claim only. The backend keeps the lasting record; this closes the race between two
   * requests that both read it before either wrote.
   */
  async claimOnce (userId: string, what: string, ttl: number): Promise<boolean> {
    const key = `gw:{u:${userId}}:mfa:once:${digest(what).slice(0, 22)}`
    return await orStoreUnavailable(this.#redis.set(key, '1', 'EX', ttl, 'NX')) === 'OK'
  }

  /** Stores a WebAuthn challenge with what it was issued for. */
  async storeChallenge (challenge: string, value: Record<string, unknown>): Promise<void> {
    await orStoreUnavailable(this.#redis.set(`gw:wa:{${digest(challenge).slice(0, 22)}}`, JSON.stringify(value), 'EX', CHALLENGE_TTL))
  }

  /** Takes a challenge (single use): what it was issued for, or null when unknown or used. */
  async takeChallenge (challenge: string): Promise<Record<string, unknown> | null> {
    const data = await orStoreUnavailable(this.#redis.getdel(`gw:wa:{${digest(challenge).slice(0, 22)}}`))
    return data === null ? null : JSON.parse(data) as Record<string, unknown>
  }
}
