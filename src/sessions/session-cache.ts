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
/** Sessions cached per replica; the oldest go first. */
const MAX_ENTRIES = 100_000

/** One session check's answer, as cached. */
export interface CachedCheck {
  alive: boolean
  /** The user's roles as stored (JSON), '' when none are recorded. */
  roles: string
  /** When the user's state was last confirmed (ms), null when unknown. */
  checked: number | null
}

interface Entry { value: CachedCheck, at: number, userKey: string }
interface Placeholder { gen: number, userKey: string }

export class SessionCache {
  readonly tracker: CacheTracker
  readonly stats: CacheStats = { hits: 0, misses: 0, flushes: 0 }
  readonly #entries = new Map<string, Entry | Placeholder>()
  /** The user's state key -> the session record keys cached for the user. */
  readonly #byUser = new Map<string, Set<string>>()

  constructor (makeTracker: (onInvalidate: (keys: string[] | null) => void) => CacheTracker) {
    this.tracker = makeTracker((keys) => { this.#invalidate(keys) })
  }

  /** The cached answer for the session record `key`, unless older than MAX_AGE_MS or not trusted now. */
  get (key: string, now: number = Date.now()): CachedCheck | undefined {
    const found = this.#entries.get(key)
    if (found === undefined || !('value' in found)) return undefined
    if (now - found.at >= MAX_AGE_MS || this.tracker.generation(now) === null) return undefined
    return found.value
  }

  /** Reserves a fill before the read is sent; undefined when reads are not tracked right now. */
  reserve (key: string, userKey: string): Placeholder | undefined {
    const gen = this.tracker.generation()
    if (gen === null) return undefined
    const placeholder: Placeholder = { gen, userKey }
    this.#set(key, placeholder)
    return placeholder
  }

  /** Fills the reserved entry with the read's answer, unless an invalidation or a lost connection came first. */
  fill (key: string, placeholder: Placeholder, value: CachedCheck): void {
    if (this.#entries.get(key) !== placeholder || !this.tracker.stillValid(placeholder.gen)) return
    this.#set(key, { value, at: Date.now(), userKey: placeholder.userKey })
  }

  /** Drops the reserved entry (the read failed). */
  release (key: string, placeholder: Placeholder): void {
    if (this.#entries.get(key) === placeholder) this.#delete(key)
  }

  get size (): number { return this.#entries.size }

  #set (key: string, item: Entry | Placeholder): void {
    this.#entries.delete(key)
    if (this.#entries.size >= MAX_ENTRIES) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#delete(oldest.value)
    }
    this.#entries.set(key, item)
    let keys = this.#byUser.get(item.userKey)
    if (keys === undefined) this.#byUser.set(item.userKey, keys = new Set())
    keys.add(key)
  }

  #delete (key: string): void {
    const item = this.#entries.get(key)
    if (item === undefined) return
    this.#entries.delete(key)
    const keys = this.#byUser.get(item.userKey)
    keys?.delete(key)
    if (keys?.size === 0) this.#byUser.delete(item.userKey)
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
      const sessions = this.#byUser.get(key)
      if (sessions !== undefined) for (const s of [...sessions]) this.#delete(s)
      this.#delete(key)
    }
  }
}
