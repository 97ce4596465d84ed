/**
 * Sessions in Redis. A session (one login) is the source of truth for every token that descends
 * from it: a token whose session record is missing is refused, so losing Redis data logs users
 * out and can never bring a revoked token back.
 *
 * Every operation is one round trip (a Lua script or a single command). Keys of one user share
 * the hash tag `{u:<userId>}`, so the scripts touch one Redis Cluster slot.
 */
import { defineScripts, type RedisClient, type ScriptDefinition } from '../lib/redis-client.js'
import { orStoreUnavailable, storeUnavailable } from '../lib/store-unavailable.js'
import { checkSessionLua } from './scripts/check-session.js'
import { createSessionLua } from './scripts/create-session.js'
import { recordUserStateLua } from './scripts/record-user-state.js'
import { listSessionsLua } from './scripts/list-sessions.js'
import { revokeAllSessionsLua, revokeSessionLua } from './scripts/revoke-sessions.js'
import { rotateRefreshLua } from './scripts/rotate-refresh.js'
import { openSuccessor, sealSuccessor } from './sealed-successor.js'
import type { SessionCache } from './session-cache.js'
import type { RequestCounter } from '../lib/request-counter.js'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { PROOF_REPLAYED, withProofJti, type ProofJtiClaim } from '../dpop/proof-jti.js'

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
  refreshCounter: (userId: string, sessionId: string) => `gw:{u:${userId}}:rl:refresh:${sessionId}`,
  /** The user's live state (active, roles, when last confirmed by the users service). */
  state: (userId: string) => `gw:{u:${userId}}:state`,
  /** Held by the one replica that refreshes the user's state (single flight). */
  stateLease: (userId: string) => `gw:{u:${userId}}:state:lease`,
  /** When the user last revoked every (other) session (ms): legacy tokens issued before are refused. */
  legacyCutoff: (userId: string) => `gw:{u:${userId}}:legacy-cutoff`
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
  /** When the roles were read from the users service (ms; default now): recorded as the user's live state. */
  stateCheckedAt?: number
}

/** A user's state as the users service gives it. */
export interface UserState { active: boolean, roles: string[] }

/** How old the user's live state is: fresh, refresh due (roles still usable), unknown or too old (roles unusable). */
export type StatePhase = 'fresh' | 'refresh-due' | 'unusable'
/** By the number the session check script answers (0, 1, 2). */
const PHASES: readonly StatePhase[] = ['fresh', 'refresh-due', 'unusable']

/** What the session check knows of the user's live state; `leased` when this caller must refresh it. */
export interface StateSnapshot { phase: StatePhase, leased: boolean, roles: string[] | null }

/** `replayed`: the DPoP proof's jti was seen before (nothing else was checked then). */
export interface SessionCheck { alive: boolean, count: number, ttlMs: number, state: StateSnapshot, replayed?: boolean }

/** Which sessions a state change revokes. */
export type StateRevocation = { mode: 'none' } | { mode: 'all' } | { mode: 'others', keep: string }

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

/** The check script's answer: alive, count, ttl ms, phase, leased, roles JSON, checked ('' when unknown). */
type CheckReply = [number, number, number, number, number, string, string?]

/** What a replica keeps in memory instead of a round trip per request (SESSION_CACHE=on). */
export interface LocalState {
  /** Session checks cached per replica, invalidated by Redis (one Redis, or every node of a Redis Cluster). */
  cache?: SessionCache
  /** The per-user request counters, counted locally and sent in batches. */
  counter: RequestCounter
  /** The user's per-minute request limit. */
  apiLimit: number
}

/** The custom commands defined on the client, typed. */
interface SessionCommands {
  gwCreateSession: (...args: Array<string | number>) => Promise<number>
  gwCheckSession: (
    key: string,
    state: string,
    lease: string,
    now: number,
    touchMs: number,
    windowMs: number,
    stateTtlMs: number,
    leaseMs: number
  ) => Promise<CheckReply>
  gwCheckSessionCounted: (
    key: string,
    state: string,
    lease: string,
    counter: string,
    now: number,
    touchMs: number,
    windowMs: number,
    stateTtlMs: number,
    leaseMs: number
  ) => Promise<CheckReply>
  gwCheckSessionProof: (...args: Array<string | number>) => Promise<CheckReply>
  gwCheckSessionCountedProof: (...args: Array<string | number>) => Promise<CheckReply>
  gwRecordUserState: (
    state: string,
    index: string,
    checkedAt: number,
    active: string,
    roles: string,
    ttl: number,
    prefix: string,
    revoke: string,
    keep: string
  ) => Promise<[number, string, number]>
  gwRotateRefresh: (...args: Array<string | number>) => Promise<[string, number, number, string?, string?, string?]>
  gwListSessions: (key: string, prefix: string) => Promise<string[][]>
  gwRevokeSession: (record: string, index: string, sessionId: string) => Promise<number>
  gwRevokeAllSessions: (index: string, prefix: string) => Promise<number>
}

/** A pipeline of the custom commands used together (session creation records the user's state; a revocation its legacy cut-off). */
interface SessionPipeline {
  gwCreateSession: (...args: Array<string | number>) => SessionPipeline
  gwRecordUserState: (...args: Array<string | number>) => SessionPipeline
  gwRevokeAllSessions: (...args: Array<string | number>) => SessionPipeline
  set: (key: string, value: number, px: 'PXAT', at: number) => SessionPipeline
  exec: () => Promise<Array<[Error | null, unknown]> | null>
}

const SCRIPTS: Record<keyof SessionCommands, ScriptDefinition> = {
  gwCreateSession: { numberOfKeys: 2, lua: createSessionLua },
  gwCheckSession: { numberOfKeys: 3, lua: checkSessionLua },
  gwCheckSessionCounted: { numberOfKeys: 4, lua: checkSessionLua },
  // The same with a DPoP proof's jti claimed first (its key last of KEYS, its TTL last of ARGV).
  gwCheckSessionProof: { numberOfKeys: 4, lua: withProofJti(checkSessionLua) },
  gwCheckSessionCountedProof: { numberOfKeys: 5, lua: withProofJti(checkSessionLua) },
  gwRecordUserState: { numberOfKeys: 2, lua: recordUserStateLua },
  gwRotateRefresh: { numberOfKeys: 4, lua: rotateRefreshLua },
  gwListSessions: { numberOfKeys: 1, lua: listSessionsLua },
  gwRevokeSession: { numberOfKeys: 2, lua: revokeSessionLua },
  gwRevokeAllSessions: { numberOfKeys: 1, lua: revokeAllSessionsLua }
}

const iso = (ms: string | undefined): string => new Date(Number(ms)).toISOString()

/** Roles as stored in the user's state (JSON); null when absent or not a list of strings. */
function parseRoles (json: string | null | undefined): string[] | null {
  if (json === null || json === undefined || json === '') return null
  try {
    const roles: unknown = JSON.parse(json)
    return Array.isArray(roles) && roles.every((r) => typeof r === 'string') ? roles : null
  } catch {
    return null
  }
}

function snapshot (phase: number, leased: number, roles: string): StateSnapshot {
  return { phase: PHASES[phase] ?? 'unusable', leased: leased === 1, roles: parseRoles(roles) }
}

export class SessionStore {
  readonly #redis: SessionCommands & RedisClient
  readonly #refreshTtl: number
  readonly #graceMs: number
  readonly #refreshLimit: WindowLimit
  readonly #stateTtlMs: number
  readonly #leaseMs: number

  readonly #legacyUntilMs: number | null
  readonly #local: LocalState | undefined
  readonly #tracked: (SessionCommands & RedisClient) | undefined

  /**
   * Told the user's id after their sessions were revoked or their recorded state changed
   * (deactivated, other roles), once Redis has it: live connections are judged again
   * (src/live/live-channel.ts). Never on the hot path.
   */
  onUserChange: ((userId: string) => void) | null = null

  constructor (redis: RedisClient, opts: { refreshTtl: number, reuseGraceSeconds: number, refreshLimit: WindowLimit, userStateTtl?: number,
    legacyUntilMs?: number | null, local?: LocalState }) {
    this.#redis = defineScripts<SessionCommands>(redis, SCRIPTS)
    this.#local = opts.local
    const tracked = opts.local?.cache?.tracker.data
    if (tracked !== undefined) this.#tracked = defineScripts<SessionCommands>(tracked, SCRIPTS)
    this.#refreshTtl = opts.refreshTtl
    this.#graceMs = opts.reuseGraceSeconds * 1000
    this.#refreshLimit = opts.refreshLimit
    this.#stateTtlMs = (opts.userStateTtl ?? 60) * 1000
    // A failed refresh is retried once a lease ends: an eighth of the TTL (at least 1 s), so a few
    // attempts fit in the half TTL during which the last known state still serves.
    this.#leaseMs = Math.max(1000, Math.floor(this.#stateTtlMs / 8))
    this.#legacyUntilMs = opts.legacyUntilMs ?? null
  }

  /**
   * Runs a revocation of every (other) session of the user; while legacy refresh tokens can still
   * be exchanged, records in the same round trip (a pipeline on the user's hash tag) when it
   * happened, until the exchange window closes (src/auth/legacy-exchange.ts refuses older ones).
   */
  async #revokingAll (userId: string, revoke: (pipeline: SessionPipeline) => SessionPipeline): Promise<number> {
    const now = Date.now()
    let pipeline = this.#redis.pipeline() as unknown as SessionPipeline
    pipeline = revoke(pipeline)
    if (this.#legacyUntilMs !== null && this.#legacyUntilMs > now) pipeline =
      pipeline.set(sessionKeys.legacyCutoff(userId), now, 'PXAT', this.#legacyUntilMs)
    const results = await orStoreUnavailable(pipeline.exec())
    const failed = results?.find(([err]) => err !== null)?.[0]
    if (failed !== undefined && failed !== null) throw storeUnavailable(failed)
    await this.#invalidationsSent(userId)
    const first = results?.[0]?.[1]
    this.onUserChange?.(userId)
    return Array.isArray(first) ? Number(first[2]) : Number(first)
  }

  /**
   * After a change that revokes or changes a user's access, and before it is answered: resolves
   * once Redis has written the invalidations of that change to every replica's invalidation
   * connection, and (Redis Cluster) no replica can still trust a node that stopped owning the
   * user's slot (src/sessions/session-cache.ts, CacheTracker's settle; docs/session-cache.md: why
   * another replica then cannot serve the revoked session).
   */
  async #invalidationsSent (userId: string): Promise<void> {
    const cache = this.#local?.cache
    if (cache === undefined) return
    await orStoreUnavailable(cache.tracker.settle(this.#redis, sessionKeys.state(userId)))
  }

  /** When the user last revoked all sessions (ms), as recorded during the legacy exchange window; null when never. */
  async legacyCutoff (userId: string): Promise<number | null> {
    const value = await orStoreUnavailable(this.#redis.get(sessionKeys.legacyCutoff(userId)))
    return value === null ? null : Number(value)
  }

  get userStateTtlMs (): number { return this.#stateTtlMs }

  async create (s: NewSession): Promise<void> {
    const now = Date.now()
    // The credentials check just read the user's roles: they are the user's live state too. One
    // round trip (a pipeline on one hash tag).
    const results = await orStoreUnavailable((this.#redis.pipeline() as unknown as SessionPipeline)
      .gwCreateSession(
        sessionKeys.record(s.userId, s.sessionId), sessionKeys.index(s.userId),
        s.sessionId, this.#refreshTtl, sessionKeys.recordPrefix(s.userId),
        'uid', s.userId, 'un', s.username, 'roles', JSON.stringify(s.roles),
        'created', now, 'used', now, 'ip', s.ip, 'ua', s.userAgent.slice(0, 256), 'cur', s.refreshJti)
      .gwRecordUserState(
        sessionKeys.state(s.userId), sessionKeys.index(s.userId), s.stateCheckedAt ?? now, '1', JSON.stringify(s.roles),
        this.#refreshTtl, sessionKeys.recordPrefix(s.userId), 'none', '')
      .exec())
    const failed = results?.find(([err]) => err !== null)?.[0]
    if (failed !== undefined && failed !== null) throw storeUnavailable(failed)
  }

  /** True when the session is alive (and its user active). Takes no state-refresh lease. */
  async isAlive (userId: string, sessionId: string): Promise<boolean> {
    return (await this.check(userId, sessionId, { mayRefresh: false })).alive
  }

  /**
   * The one Redis round trip of an authenticated request: is the session alive, what are the
   * user's current roles, is a refresh of them due (and is this caller the one to do it), and, with
   * `windowMs`, the request counted in the user's window (alive sessions only).
   */
  async check (userId: string, sessionId: string, opts: { windowMs?: number, mayRefresh?: boolean, proofJti?: ProofJtiClaim } = {}):
    Promise<SessionCheck> {
    const local = this.#local
    // A DPoP proof's jti must be unique across replicas: such a request keeps its one round trip.
    if (local === undefined || opts.proofJti !== undefined) return this.#checkInRedis(userId, sessionId, opts)
    const result = await this.#checkCached(userId, sessionId, local.cache, opts.mayRefresh !== false)
    if (!result.alive || opts.windowMs === undefined) return result
    const view = await local.counter.hit(sessionKeys.apiCounter(userId), local.apiLimit)
    return { ...result, count: view.count, ttlMs: view.ttlMs }
  }

  /**
   * The session check from the replica's cache when it holds a trusted answer, else from Redis
   * (and cached when the read was tracked). A cached answer is used only after one turn of the
   * event loop: an invalidation already received by this process is applied first (see
   * docs/session-cache.md on why that closes the race with a revocation on another replica).
   */
  async #checkCached (userId: string, sessionId: string, cache: SessionCache | undefined, mayRefresh: boolean): Promise<SessionCheck> {
    const record = sessionKeys.record(userId, sessionId)
    if (cache !== undefined && cache.get(record) !== undefined) {
      await nextTurn()
      const hit = cache.get(record)
      if (hit !== undefined) {
        const phase = this.#phaseOf(hit.checked)
        if (!hit.alive || phase === 0) cache.stats.hits++
        if (!hit.alive) return { alive: false, count: 0, ttlMs: 0, state: snapshot(0, 0, '') }
        if (phase === 0) return { alive: true, count: 0, ttlMs: 0, state: snapshot(0, 0, hit.roles) }
      }
    }
    if (cache !== undefined) cache.stats.misses++
    const stateKey = sessionKeys.state(userId)
    const placeholder = cache?.reserve(record, stateKey)
    const client = placeholder !== undefined && this.#tracked !== undefined ? this.#tracked : this.#redis
    let reply: CheckReply
    try {
      reply = await orStoreUnavailable(client.gwCheckSession(record, stateKey, sessionKeys.stateLease(userId),
        Date.now(), TOUCH_INTERVAL_MS, 0, this.#stateTtlMs, mayRefresh ? this.#leaseMs : 0))
    } catch (err) {
      if (placeholder !== undefined) cache?.release(record, placeholder)
      throw err
    }
    const [alive, , , phase, leased, roles, checked] = reply
    if (placeholder !== undefined) {
      // Only answers that a later request may reuse as they are: dead, or alive with a fresh state.
      if (alive !== 1 || phase === 0) cache?.fill(
        record,
        placeholder,
        { alive: alive === 1, roles, checked: checked === undefined || checked === '' ? null : Number(checked) }
      )
      else cache?.release(record, placeholder)
    }
    return { alive: alive === 1, count: 0, ttlMs: 0, state: snapshot(phase, leased, roles) }
  }

  /** The phase of a state confirmed at `checked` (as the check script computes it). */
  #phaseOf (checked: number | null): 0 | 1 | 2 {
    if (checked === null) return 2
    const age = Date.now() - checked
    return age < this.#stateTtlMs / 2 ? 0 : age < this.#stateTtlMs ? 1 : 2
  }

  /** The per-request check: one script in Redis, the request counted there too (SESSION_CACHE=off). */
  async #checkInRedis (userId: string, sessionId: string, opts: { windowMs?: number, mayRefresh?: boolean, proofJti?: ProofJtiClaim }):
    Promise<SessionCheck> {
    const leaseMs = opts.mayRefresh === false ? 0 : this.#leaseMs
    const record = sessionKeys.record(userId, sessionId)
    const jti = opts.proofJti
    const [alive, count, ttlMs, phase, leased, roles] = await orStoreUnavailable(jti !== undefined
      ? this.#checkWithProof(userId, record, opts.windowMs, leaseMs, jti)
      : opts.windowMs === undefined
        ? this.#redis.gwCheckSession(record, sessionKeys.state(userId), sessionKeys.stateLease(userId),
          Date.now(), TOUCH_INTERVAL_MS, 0, this.#stateTtlMs, leaseMs)
        : this.#redis.gwCheckSessionCounted(record, sessionKeys.state(userId), sessionKeys.stateLease(userId),
          sessionKeys.apiCounter(userId),
          Date.now(), TOUCH_INTERVAL_MS, opts.windowMs, this.#stateTtlMs, leaseMs))
    if (alive === PROOF_REPLAYED) return { alive: false, count: 0, ttlMs: 0, state: snapshot(2, 0, ''), replayed: true }
    return { alive: alive === 1, count: count ?? 0, ttlMs: ttlMs ?? 0, state: snapshot(phase, leased, roles) }
  }

  /** The session check with a DPoP proof's jti claimed first, in the same script (see src/dpop/proof-jti.ts). */
  #checkWithProof (userId: string, record: string, windowMs: number | undefined, leaseMs: number, jti: ProofJtiClaim): Promise<CheckReply> {
    return windowMs === undefined
      ? this.#redis.gwCheckSessionProof(record, sessionKeys.state(userId), sessionKeys.stateLease(userId), jti.key,
        Date.now(), TOUCH_INTERVAL_MS, 0, this.#stateTtlMs, leaseMs, jti.ttlMs)
      : this.#redis.gwCheckSessionCountedProof(record, sessionKeys.state(userId), sessionKeys.stateLease(userId),
        sessionKeys.apiCounter(userId), jti.key,
        Date.now(), TOUCH_INTERVAL_MS, windowMs, this.#stateTtlMs, leaseMs, jti.ttlMs)
  }

  /** isAlive and, in the same round trip, counts the request in the user's window (alive sessions only). */
  async isAliveCounted (userId: string, sessionId: string, windowMs: number, proofJti?: ProofJtiClaim): Promise<SessionCheck> {
    return this.check(userId, sessionId, proofJti === undefined ? { windowMs } : { windowMs, proofJti })
  }

  /**
   * Records the user's state as read from the users service at `checkedAt` (ms) and revokes
   * sessions, atomically. Returns whether the state was written (a newer one wins), the roles
   * recorded before, and how many sessions were revoked.
   */
  async recordUserState (userId: string, state: UserState, checkedAt: number,
    revoke: StateRevocation = { mode: 'none' }): Promise<{ written: boolean, previousRoles: string[] | null, revoked: number }> {
    const [written, previous, revoked] = await orStoreUnavailable(this.#redis.gwRecordUserState(
      sessionKeys.state(userId), sessionKeys.index(userId), checkedAt, state.active ? '1' : '0', JSON.stringify(state.roles),
      this.#refreshTtl, sessionKeys.recordPrefix(userId), revoke.mode, revoke.mode === 'others' ? revoke.keep : ''))
    const previousRoles = parseRoles(previous)
    const changed = written === 1 && (!state.active || previousRoles === null || previousRoles.join('\n') !== state.roles.join('\n'))
    if (revoked > 0 || changed) this.onUserChange?.(userId)
    await this.#invalidationsSent(userId)
    return { written: written === 1, previousRoles, revoked }
  }

  /** Revokes the user's sessions (all, or all but one) without touching the recorded state. */
  async revokeSessions (userId: string, revoke: { mode: 'all' } | { mode: 'others', keep: string }): Promise<number> {
    return this.#revokingAll(userId, (p) => p.gwRecordUserState(
      sessionKeys.state(userId), sessionKeys.index(userId), 0, '', '', this.#refreshTtl, sessionKeys.recordPrefix(userId),
      revoke.mode, revoke.mode === 'others' ? revoke.keep : ''))
  }

  /** The user's recorded state and when it was read (ms), or null when none is recorded. */
  async readUserState (userId: string): Promise<(UserState & { checkedAt: number }) | null> {
    const [active, roles, checked] = await orStoreUnavailable(this.#redis.hmget(sessionKeys.state(userId), 'active', 'roles', 'checked'))
    const parsed = parseRoles(roles)
    if (parsed === null || checked === null || checked === undefined) return null
    return { active: active === '1', roles: parsed, checkedAt: Number(checked) }
  }

  /** Forgets the user's recorded state: the next request must read it from the users service. */
  async forgetUserState (userId: string): Promise<void> {
    await orStoreUnavailable(this.#redis.del(sessionKeys.state(userId)))
    await this.#invalidationsSent(userId)
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
  async rotate (userId: string, sessionId: string, jti: string, next: { jti: string, token: string },
    presented: string): Promise<RotationResult> {
    const [outcome, count, ttlMs, sealed, username, roles] = await orStoreUnavailable(this.#redis.gwRotateRefresh(
      sessionKeys.record(userId, sessionId), sessionKeys.index(userId), sessionKeys.refreshCounter(userId, sessionId),
        sessionKeys.state(userId),
      jti, next.jti, sealSuccessor(next.token, presented, sessionId), Date.now(), this.#graceMs, this.#refreshTtl, sessionId,
      this.#refreshLimit.max, this.#refreshLimit.windowMs
    ))
    if (outcome === 'reused') await this.#invalidationsSent(userId)
    if (outcome === 'rotated' || outcome === 'grace') {
      // A grace replay presents the token of the rotation, so it opens the seal the rotation made.
      const refresh = outcome === 'rotated' ? next.token : openSuccessor(sealed as string, presented, sessionId)
      if (refresh === null) return { outcome: 'missing', count, ttlMs }
      return { outcome, count, ttlMs, refresh, username: username as string, roles: JSON.parse(roles as string) as string[] }
    }
    // Reuse detection revoked the session.
    if (outcome === 'reused') this.onUserChange?.(userId)
    return { outcome, count, ttlMs } as RotationResult
  }

  async list (userId: string): Promise<SessionInfo[]> {
    const rows = await orStoreUnavailable(this.#redis.gwListSessions(sessionKeys.index(userId), sessionKeys.recordPrefix(userId)))
    return rows
      .map(([id, created, used, ip, ua]) => ({ id: id as string, created_at: iso(created), last_used_at: iso(used), ip: ip ?? '',
        user_agent: ua ?? '' }))
      .sort((a, b) => a.created_at.localeCompare(b.created_at))
  }

  /** Revokes one session of the user; false when the user has no such session. */
  async revoke (userId: string, sessionId: string): Promise<boolean> {
    const n = await orStoreUnavailable(this.#redis.gwRevokeSession(
      sessionKeys.record(userId, sessionId),
      sessionKeys.index(userId),
      sessionId
    ))
    await this.#invalidationsSent(userId)
    if (n === 1) this.onUserChange?.(userId)
    return n === 1
  }

  /** Revokes every session of the user; returns how many were alive. */
  revokeAll (userId: string): Promise<number> {
    return this.#revokingAll(userId, (p) => p.gwRevokeAllSessions(sessionKeys.index(userId), sessionKeys.recordPrefix(userId)))
  }
}
