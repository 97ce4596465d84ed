/**
 * Sessions in Redis. A session (one login) is the source of truth for every token that descends
 * from it: a token whose session record is missing is refused, so losing Redis data logs users
 * out and can never bring a revoked token back.
 *
 * Every operation is one round trip (a Lua script or a single command). Keys of one user share
 * the hash tag `{u:<userId>}`, so the scripts touch one Redis Cluster slot.
 */
import type { Cluster, Redis } from 'ioredis'
import { gatewayError } from '../errors.js'
import { checkSessionLua } from './scripts/check-session.js'
import { createSessionLua } from './scripts/create-session.js'
import { listSessionsLua } from './scripts/list-sessions.js'
import { revokeAllSessionsLua, revokeSessionLua } from './scripts/revoke-sessions.js'
import { rotateRefreshLua } from './scripts/rotate-refresh.js'

export type RedisClient = Redis | Cluster

/** How often the hot path writes `last used` (it only reads in between). */
const TOUCH_INTERVAL_MS = 30_000

export const sessionKeys = {
  /** Prefix of every session record of a user. */
  recordPrefix: (userId: string) => `gw:{u:${userId}}:s:`,
  record: (userId: string, sessionId: string) => `gw:{u:${userId}}:s:${sessionId}`,
  index: (userId: string) => `gw:{u:${userId}}:sessions`
}

export interface NewSession {
  userId: string
  username: string
  roles: string[]
  sessionId: string
  refreshJti: string
  ip: string
  userAgent: string
}

export interface SessionInfo {
  id: string
  created_at: string
  last_used_at: string
  ip: string
  user_agent: string
}

export type RotationResult =
  | { outcome: 'rotated' | 'grace', refresh: string, username: string, roles: string[] }
  | { outcome: 'reused' }
  | { outcome: 'missing' }

/** The custom commands defined on the client, typed. */
interface SessionCommands {
  gwCreateSession: (...args: Array<string | number>) => Promise<number>
  gwCheckSession: (key: string, now: number, touchMs: number) => Promise<number>
  gwRotateRefresh: (...args: Array<string | number>) => Promise<string[]>
  gwListSessions: (key: string, prefix: string) => Promise<string[][]>
  gwRevokeSession: (record: string, index: string, sessionId: string) => Promise<number>
  gwRevokeAllSessions: (index: string, prefix: string) => Promise<number>
}

const SCRIPTS: Record<keyof SessionCommands, { numberOfKeys: number, lua: string }> = {
  gwCreateSession: { numberOfKeys: 2, lua: createSessionLua },
  gwCheckSession: { numberOfKeys: 1, lua: checkSessionLua },
  gwRotateRefresh: { numberOfKeys: 2, lua: rotateRefreshLua },
  gwListSessions: { numberOfKeys: 1, lua: listSessionsLua },
  gwRevokeSession: { numberOfKeys: 2, lua: revokeSessionLua },
  gwRevokeAllSessions: { numberOfKeys: 1, lua: revokeAllSessionsLua }
}

/** Any failure to talk to Redis becomes `store_unavailable`: fail closed, never a 500. */
async function orUnavailable<T> (op: Promise<T>): Promise<T> {
  try {
    return await op
  } catch (err) {
    throw gatewayError('store_unavailable', undefined, { 'retry-after': '1' }, err)
  }
}

const iso = (ms: string | undefined): string => new Date(Number(ms)).toISOString()

export class SessionStore {
  readonly #redis: SessionCommands & RedisClient
  readonly #refreshTtl: number
  readonly #graceMs: number

  constructor (redis: RedisClient, opts: { refreshTtl: number, reuseGraceSeconds: number }) {
    for (const [name, def] of Object.entries(SCRIPTS)) redis.defineCommand(name, def)
    this.#redis = redis as SessionCommands & RedisClient
    this.#refreshTtl = opts.refreshTtl
    this.#graceMs = opts.reuseGraceSeconds * 1000
  }

  async create (s: NewSession): Promise<void> {
    const now = Date.now()
    await orUnavailable(this.#redis.gwCreateSession(
      sessionKeys.record(s.userId, s.sessionId), sessionKeys.index(s.userId),
      s.sessionId, this.#refreshTtl, sessionKeys.recordPrefix(s.userId),
      'uid', s.userId, 'un', s.username, 'roles', JSON.stringify(s.roles),
      'created', now, 'used', now, 'ip', s.ip, 'ua', s.userAgent.slice(0, 256), 'cur', s.refreshJti
    ))
  }

  /** True when the session is alive. The one Redis round trip of an authenticated request. */
  async isAlive (userId: string, sessionId: string): Promise<boolean> {
    const alive = await orUnavailable(this.#redis.gwCheckSession(sessionKeys.record(userId, sessionId), Date.now(), TOUCH_INTERVAL_MS))
    return alive === 1
  }

  /** Is this refresh token the session's current one (or its predecessor within the grace window)? */
  async isRefreshLive (userId: string, sessionId: string, jti: string): Promise<boolean> {
    const [cur, prev, prevAt] = await orUnavailable(this.#redis.hmget(sessionKeys.record(userId, sessionId), 'cur', 'prev', 'prev_at'))
    if (cur === null || cur === undefined) return false
    return jti === cur || (jti === prev && Date.now() - Number(prevAt) <= this.#graceMs)
  }

  /** Rotates the refresh token `jti` to `next` atomically; see scripts/rotate-refresh.ts. */
  async rotate (userId: string, sessionId: string, jti: string, next: { jti: string, token: string }): Promise<RotationResult> {
    const [outcome, refresh, username, roles] = await orUnavailable(this.#redis.gwRotateRefresh(
      sessionKeys.record(userId, sessionId), sessionKeys.index(userId),
      jti, next.jti, next.token, Date.now(), this.#graceMs, this.#refreshTtl, sessionId
    ))
    if (outcome === 'rotated' || outcome === 'grace') {
      return { outcome, refresh: refresh as string, username: username as string, roles: JSON.parse(roles as string) as string[] }
    }
    return outcome === 'reused' ? { outcome: 'reused' } : { outcome: 'missing' }
  }

  async list (userId: string): Promise<SessionInfo[]> {
    const rows = await orUnavailable(this.#redis.gwListSessions(sessionKeys.index(userId), sessionKeys.recordPrefix(userId)))
    return rows
      .map(([id, created, used, ip, ua]) => ({ id: id as string, created_at: iso(created), last_used_at: iso(used), ip: ip ?? '', user_agent: ua ?? '' }))
      .sort((a, b) => a.created_at.localeCompare(b.created_at))
  }

  /** Revokes one session of the user; false when the user has no such session. */
  async revoke (userId: string, sessionId: string): Promise<boolean> {
    const n = await orUnavailable(this.#redis.gwRevokeSession(sessionKeys.record(userId, sessionId), sessionKeys.index(userId), sessionId))
    return n === 1
  }

  /** Revokes every session of the user; returns how many were alive. */
  revokeAll (userId: string): Promise<number> {
    return orUnavailable(this.#redis.gwRevokeAllSessions(sessionKeys.index(userId), sessionKeys.recordPrefix(userId)))
  }
}
