/**
 * Sessions in Redis. A session (one login) is the source of truth for every token that descends
 * from it: a token whose session record is missing is refused, so losing Redis data logs users
 * out and can never bring a revoked token back.
 *
 * Every operation is one round trip (a Lua script or a single command). Keys of one user share
 * the hash tag `{u:<userId>}`, so the scripts touch one Redis Cluster slot.
 */
import type { Cluster, Redis } from 'ioredis'
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import { checkSessionLua } from './scripts/check-session.js'
import { createSessionLua } from './scripts/create-session.js'
import { listSessionsLua } from './scripts/list-sessions.js'
import { revokeAllSessionsLua, revokeSessionLua } from './scripts/revoke-sessions.js'
import { rotateRefreshLua } from './scripts/rotate-refresh.js'
import { openSuccessor, sealSuccessor } from './sealed-successor.js'

export type RedisClient = Redis | Cluster

/** How often the hot path writes `last used` (it only reads in between). */
const TOUCH_INTERVAL_MS = 30_000

export const sessionKeys = {
  /** Prefix of every session record of a user. */
  recordPrefix: (userId: string) => `gw:{u:${userId}}:s:`,
  record: (userId: string, sessionId: string) => `gw:{u:${userId}}:s:${sessionId}`,
  index: (userId: string) => `gw:{u:${userId}}:sessions`,
  /** Fixed-window counter of the user's proxied requests. */
  apiCounter: (userId: string) => `gw:{u:${userId}}:rl:api`,
  /** Fixed-window counter of a session's refreshes. */
  refreshCounter: (userId: string, sessionId: string) => `gw:{u:${userId}}:rl:refresh:${sessionId}`
}

/** A per-minute limit counted inside a session script. */
export interface WindowLimit { max: number, windowMs: number }

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

/** The session's refresh window after this call (for the x-ratelimit-* headers). */
export interface RefreshWindow { count: number, ttlMs: number }

interface Rotated extends RefreshWindow { refresh: string, username: string, roles: string[] }
export type RotationResult =
  | Rotated & { outcome: 'rotated' }
  | Rotated & { outcome: 'grace' }
  | RefreshWindow & { outcome: 'limited' }
  | RefreshWindow & { outcome: 'reused' }
  | RefreshWindow & { outcome: 'missing' }

/** The custom commands defined on the client, typed. */
interface SessionCommands {
  gwCreateSession: (...args: Array<string | number>) => Promise<number>
  gwCheckSession: (key: string, now: number, touchMs: number) => Promise<number[]>
  gwCheckSessionCounted: (key: string, counter: string, now: number, touchMs: number, windowMs: number) => Promise<number[]>
  gwRotateRefresh: (...args: Array<string | number>) => Promise<[string, number, number, string?, string?, string?]>
  gwListSessions: (key: string, prefix: string) => Promise<string[][]>
  gwRevokeSession: (record: string, index: string, sessionId: string) => Promise<number>
  gwRevokeAllSessions: (index: string, prefix: string) => Promise<number>
}

const SCRIPTS: Record<keyof SessionCommands, { numberOfKeys: number, lua: string }> = {
  gwCreateSession: { numberOfKeys: 2, lua: createSessionLua },
  gwCheckSession: { numberOfKeys: 1, lua: checkSessionLua },
  gwCheckSessionCounted: { numberOfKeys: 2, lua: checkSessionLua },
  gwRotateRefresh: { numberOfKeys: 3, lua: rotateRefreshLua },
  gwListSessions: { numberOfKeys: 1, lua: listSessionsLua },
  gwRevokeSession: { numberOfKeys: 2, lua: revokeSessionLua },
  gwRevokeAllSessions: { numberOfKeys: 1, lua: revokeAllSessionsLua }
}

const iso = (ms: string | undefined): string => new Date(Number(ms)).toISOString()

export class SessionStore {
  readonly #redis: SessionCommands & RedisClient
  readonly #refreshTtl: number
  readonly #graceMs: number
  readonly #refreshLimit: WindowLimit

  constructor (redis: RedisClient, opts: { refreshTtl: number, reuseGraceSeconds: number, refreshLimit: WindowLimit }) {
    for (const [name, def] of Object.entries(SCRIPTS)) redis.defineCommand(name, def)
    this.#redis = redis as SessionCommands & RedisClient
    this.#refreshTtl = opts.refreshTtl
    this.#graceMs = opts.reuseGraceSeconds * 1000
    this.#refreshLimit = opts.refreshLimit
  }

  async create (s: NewSession): Promise<void> {
    const now = Date.now()
    await orStoreUnavailable(this.#redis.gwCreateSession(
      sessionKeys.record(s.userId, s.sessionId), sessionKeys.index(s.userId),
      s.sessionId, this.#refreshTtl, sessionKeys.recordPrefix(s.userId),
      'uid', s.userId, 'un', s.username, 'roles', JSON.stringify(s.roles),
      'created', now, 'used', now, 'ip', s.ip, 'ua', s.userAgent.slice(0, 256), 'cur', s.refreshJti
    ))
  }

  /** True when the session is alive. The one Redis round trip of an authenticated request. */
  async isAlive (userId: string, sessionId: string): Promise<boolean> {
    const [alive] = await orStoreUnavailable(this.#redis.gwCheckSession(sessionKeys.record(userId, sessionId), Date.now(), TOUCH_INTERVAL_MS))
    return alive === 1
  }

  /** isAlive and, in the same round trip, counts the request in the user's window (alive sessions only). */
  async isAliveCounted (userId: string, sessionId: string, windowMs: number): Promise<{ alive: boolean, count: number, ttlMs: number }> {
    const [alive, count, ttlMs] = await orStoreUnavailable(this.#redis.gwCheckSessionCounted(
      sessionKeys.record(userId, sessionId), sessionKeys.apiCounter(userId), Date.now(), TOUCH_INTERVAL_MS, windowMs))
    return { alive: alive === 1, count: count ?? 0, ttlMs: ttlMs ?? 0 }
  }

  /** Is this refresh token the session's current one (or its predecessor within the grace window, as in rotate-refresh.ts)? */
  async isRefreshLive (userId: string, sessionId: string, jti: string): Promise<boolean> {
    const [cur, prev, prevAt] = await orStoreUnavailable(this.#redis.hmget(sessionKeys.record(userId, sessionId), 'cur', 'prev', 'prev_at'))
    if (cur === null || cur === undefined) return false
    return jti === cur || (jti === prev && Date.now() - Number(prevAt) < this.#graceMs)
  }

  /**
   * Rotates the refresh token `jti` (the token `presented`) to `next` atomically; see
   * scripts/rotate-refresh.ts. `next` is stored sealed under a key derived from `presented`.
   */
  async rotate (userId: string, sessionId: string, jti: string, next: { jti: string, token: string }, presented: string): Promise<RotationResult> {
    const [outcome, count, ttlMs, sealed, username, roles] = await orStoreUnavailable(this.#redis.gwRotateRefresh(
      sessionKeys.record(userId, sessionId), sessionKeys.index(userId), sessionKeys.refreshCounter(userId, sessionId),
      jti, next.jti, sealSuccessor(next.token, presented, sessionId), Date.now(), this.#graceMs, this.#refreshTtl, sessionId,
      this.#refreshLimit.max, this.#refreshLimit.windowMs
    ))
    if (outcome === 'rotated' || outcome === 'grace') {
      // A grace replay presents the token of the rotation, so it opens the seal the rotation made.
      const refresh = outcome === 'rotated' ? next.token : openSuccessor(sealed as string, presented, sessionId)
      if (refresh === null) return { outcome: 'missing', count, ttlMs }
      return { outcome, count, ttlMs, refresh, username: username as string, roles: JSON.parse(roles as string) as string[] }
    }
    return { outcome, count, ttlMs } as RotationResult
  }

  async list (userId: string): Promise<SessionInfo[]> {
    const rows = await orStoreUnavailable(this.#redis.gwListSessions(sessionKeys.index(userId), sessionKeys.recordPrefix(userId)))
    return rows
      .map(([id, created, used, ip, ua]) => ({ id: id as string, created_at: iso(created), last_used_at: iso(used), ip: ip ?? '', user_agent: ua ?? '' }))
      .sort((a, b) => a.created_at.localeCompare(b.created_at))
  }

  /** Revokes one session of the user; false when the user has no such session. */
  async revoke (userId: string, sessionId: string): Promise<boolean> {
    const n = await orStoreUnavailable(this.#redis.gwRevokeSession(sessionKeys.record(userId, sessionId), sessionKeys.index(userId), sessionId))
    return n === 1
  }

  /** Revokes every session of the user; returns how many were alive. */
  revokeAll (userId: string): Promise<number> {
    return orStoreUnavailable(this.#redis.gwRevokeAllSessions(sessionKeys.index(userId), sessionKeys.recordPrefix(userId)))
  }
}
