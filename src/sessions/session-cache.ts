/**
 * The per-replica session cache: what the session check script answered for a session (alive or
 * not, the user's roles and when they were confirmed), kept until Redis says one of the two keys
 * the answer was read from changed (src/sessions/invalidation-tracker.ts), and at most MAX_AGE_MS.
 *
 * A fill is reserved before the read is sent (a placeholder). An invalidation that arrives
 * before the read's answer (it may overtake it: the two come on different connections) drops the
 * placeholder, and the answer is then used for that request only. Losing the invalidation
 * connection drops everything. See docs/session-cache.md.
 */
import { flatString } from '../lib/flat-string.js'
import type { RedisClient } from '../lib/redis-client.js'

/**
 * What the cache needs of Redis client-side caching: one Redis (src/sessions/invalidation-tracker.ts)
 * or every node of a Redis Cluster (src/sessions/cluster-invalidation-tracker.ts).
 */
export interface CacheTracker {
  /** The client whose reads Redis tracks: only cache-filling reads go through it. */
  readonly data: RedisClient
  start: () => void
  close: () => Promise<void>
  /** The current generation while tracked reads may fill the cache and it may be trusted; else null. */
  generation: (now?: number) => number | null
  /** True while tracking is on in the generation of `gen` (a fill read in `gen` may be kept). */
  stillValid: (gen: number) => boolean
  /**
   * After a change of `key` made through `main`, before the change is answered: resolves once no
   * replica can serve a cached answer the change replaced (docs/session-cache.md, "The race with
   * another replica").
   */
  settle: (main: RedisClient, key: string) => Promise<void>
  /** Redis nodes whose invalidations arrive now (for /metrics). */
  readonly trackedNodes: number
}

/** Counts since start, for /metrics. */
export interface CacheStats {
  /** Checks answered from the cache. */
  hits: number
  /** Checks sent to Redis while the cache was on (not cached, too old, or not trusted at that moment). */
  misses: number
  /** Times the whole cache was dropped (a lost connection, a flush of Redis, a cluster topology change). */
  flushes: number
}

/** Cached answers are read again at least this often (the session's `last used` is written then too). */
export const MAX_AGE_MS = 30_000
/** Sessions cached per replica; the oldest go first. Answers older than MAX_AGE_MS go anyway (see #set). */
const MAX_ENTRIES = 100_000

/** One session check's answer, as cached. */
export interface CachedCheck {
  readonly alive: boolean
  /** The user's roles as stored (JSON), '' when none are recorded. */
  readonly roles: string
  /** When the user's state was last confirmed (ms), null when unknown. */
  readonly checked: number | null
}

/** The sessions cached for one user's state key: an invalidation of that key drops them all. */
interface UserSessions {
  /** The state key, one flat copy shared by the user's entries. */
  readonly key: string
  readonly sessions: Set<string>
  /** The roles of the user's last fill: an equal answer shares this string instead of keeping its own. */
  roles: string
}

/**
 * A cache entry: first the placeholder of a read in flight (`filled` false, `at` when reserved),
 * then, in place, that read's answer (`at` when filled). One object per entry, the answer's fields
 * in it, rather than an entry holding an answer object: about half the memory per entry
 * (docs/operations.md, "Memory"). A later reserve of the same key makes a new one, so a fill
 * recognises its own placeholder by identity.
 */
class Slot implements CachedCheck {
  filled = false
  alive = false
  roles = ''
  checked: number | null = null
  at: number
  readonly gen: number
  readonly user: UserSessions

  constructor (gen: number, user: UserSessions, at: number) {
    this.gen = gen
    this.user = user
    this.at = at
  }
}

/** What reserve hands out and fill and release take back (opaque to callers). */
export type Placeholder = Slot

export class SessionCache {
  readonly tracker: CacheTracker
  readonly stats: CacheStats = { hits: 0, misses: 0, flushes: 0 }
  /** Session record key -> entry, in the order reserved (Map order): the oldest first. */
  readonly #entries = new Map<string, Slot>()
  /** The user's state key -> the session record keys cached for the user. */
  readonly #byUser = new Map<string, UserSessions>()

  constructor (makeTracker: (onInvalidate: (keys: string[] | null) => void) => CacheTracker) {
    this.tracker = makeTracker((keys) => { this.#invalidate(keys) })
  }

  /** The cached answer for the session record `key`, unless older than MAX_AGE_MS or not trusted now. */
  get (key: string, now: number = Date.now()): CachedCheck | undefined {
    const found = this.#entries.get(key)
    if (found === undefined || !found.filled) return undefined
    if (now - found.at >= MAX_AGE_MS || this.tracker.generation(now) === null) return undefined
    return found
  }

  /** Reserves a fill before the read is sent; undefined when reads are not tracked right now. */
  reserve (key: string, userKey: string): Placeholder | undefined {
    const gen = this.tracker.generation()
    if (gen === null) return undefined
    return this.#set(key, userKey, gen)
  }

  /** Fills the reserved entry with the read's answer, unless an invalidation or a lost connection came first. */
  fill (key: string, placeholder: Placeholder, value: CachedCheck): void {
    if (placeholder.filled || this.#entries.get(key) !== placeholder || !this.tracker.stillValid(placeholder.gen)) return
    const user = placeholder.user
    if (value.roles !== user.roles) user.roles = value.roles
    placeholder.alive = value.alive
    placeholder.roles = user.roles
    placeholder.checked = value.checked
    placeholder.at = Date.now()
    placeholder.filled = true
  }

  /** Drops the reserved entry (the read failed). */
  release (key: string, placeholder: Placeholder): void {
    if (this.#entries.get(key) === placeholder) this.#delete(key)
  }

  get size (): number { return this.#entries.size }

  #set (key: string, userKey: string, gen: number): Slot {
    const now = Date.now()
    this.#delete(key)
    this.#dropExpired(now)
    if (this.#entries.size >= MAX_ENTRIES) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#delete(oldest.value)
    }
    let user = this.#byUser.get(userKey)
    if (user === undefined) {
      const flatKey = flatString(userKey)
      this.#byUser.set(flatKey, user = { key: flatKey, sessions: new Set(), roles: '' })
    }
    const flatKey = flatString(key)
    const slot = new Slot(gen, user, now)
    this.#entries.set(flatKey, slot)
    user.sessions.add(flatKey)
    return slot
  }

  /**
   * Drops the oldest entries while they are older than MAX_AGE_MS: get() never serves them, and
   * without this the entries of every session seen once would stay until MAX_ENTRIES pushes them
   * out. Entries are in the order reserved, so this stops at the first younger one (an older one
   * behind it goes at a later call); each entry is dropped once, so it costs O(1) per reserve on
   * average. A placeholder this old only means its answer is not cached.
   */
  #dropExpired (now: number): void {
    for (const [key, slot] of this.#entries) {
      if (now - slot.at < MAX_AGE_MS) return
      this.#delete(key)
    }
  }

  #delete (key: string): void {
    const slot = this.#entries.get(key)
    if (slot === undefined) return
    this.#entries.delete(key)
    const sessions = slot.user.sessions
    sessions.delete(key)
    if (sessions.size === 0 && this.#byUser.get(slot.user.key) === slot.user) this.#byUser.delete(slot.user.key)
  }

  #invalidate (keys: string[] | null): void {
    if (keys === null) {
      this.stats.flushes++
      this.#entries.clear()
      this.#byUser.clear()
      return
    }
    for (const key of keys) {
      // A user's state key: every cached session of the user depends on it.
      const user = this.#byUser.get(key)
      if (user !== undefined) for (const s of [...user.sessions]) this.#delete(s)
      this.#delete(key)
    }
  }
}
