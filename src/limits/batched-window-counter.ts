/**
 * Per-minute request counters counted on the replica and added to the shared Redis counter in
 * batches: every LIMIT_SYNC_MS for every counter with unsent hits, and at once when a counter has
 * `floor(limit / 100)` hits that Redis has not confirmed (a request waits for that). A limit under
 * 100 is counted in Redis at every request, exactly as before.
 *
 * A request is allowed while the replica's view (the Redis count at its last batch plus its own
 * hits since) is within the limit. Since each replica holds at most `floor(limit / 100)`
 * unconfirmed hits of a counter, a window admits at most `(replicas + 1) x floor(limit / 100)`
 * requests above the limit, and never fewer than the limit (docs/session-cache.md).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { flatString } from '../lib/flat-string.js'
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import type { RequestCounter, WindowView } from '../lib/request-counter.js'

/** INCRBY with the window's TTL set when the window opens (as count-in-window-lua.ts does for one hit). */
const countByLua = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == tonumber(ARGV[1]) or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {n, ttl}
`

interface CountCommands {
  gwCountBy: (key: string, by: number, windowMs: number) => Promise<[number, number]>
}

interface Counter {
  /** The Redis count at the last confirmed batch. */
  base: number
  /** Hits not yet sent. */
  unsent: number
  /** Hits sent, not yet confirmed. */
  inflight: number
  /** When the window ends (ms, from the Redis TTL). */
  resetAt: number
  sending: Promise<void> | null
}


/** How many hits of a counter a replica may hold unconfirmed: 1% of the limit, 0 under 100. */
export const unconfirmedAllowance = (limit: number): number => Math.floor(limit / 100)

export class BatchedWindowCounter implements RequestCounter {
  readonly #redis: (Redis | Cluster) & CountCommands
  readonly #windowMs: number
  readonly #log: FastifyBaseLogger
  readonly #counters = new Map<string, Counter>()
  readonly #timer: NodeJS.Timeout
  #warned = false

  constructor (redis: Redis | Cluster, opts: { windowMs: number, syncMs: number, log: FastifyBaseLogger }) {
    redis.defineCommand('gwCountBy', { numberOfKeys: 1, lua: countByLua })
    this.#redis = redis as (Redis | Cluster) & CountCommands
    this.#windowMs = opts.windowMs
    this.#log = opts.log
    this.#timer = setInterval(() => { this.#sendAll() }, opts.syncMs)
    this.#timer.unref()
  }

  /** Counts one hit of `key` and returns the replica's view of the window (the hit included). */
  async hit (key: string, limit: number): Promise<WindowView> {
    const allowance = unconfirmedAllowance(limit)
    const c = this.#counter(key)
    if (allowance === 0) {
      c.inflight++
      try {
        const [n, ttl] = await orStoreUnavailable(this.#redis.gwCountBy(key, 1, this.#windowMs))
        c.base = Math.max(c.base, n)
        c.resetAt = Date.now() + ttl
        return { count: n, ttlMs: ttl }
      } finally {
        c.inflight--
      }
    }
    while (c.unsent + c.inflight >= allowance) await this.#send(key, c)
    c.unsent++
    const now = Date.now()
    return { count: c.base + c.inflight + c.unsent, ttlMs: Math.max(0, c.resetAt - now) }
  }

  /** Sends every unsent hit now (shutdown). */
  async flush (): Promise<void> {
    clearInterval(this.#timer)
    await Promise.allSettled([...this.#counters].map(([key, c]) => this.#send(key, c)))
  }

  #counter (key: string): Counter {
    const now = Date.now()
    let c = this.#counters.get(key)
    if (c === undefined) {
      c = { base: 0, unsent: 0, inflight: 0, resetAt: now + this.#windowMs, sending: null }
      // Kept for the window: a flat copy of the key, not the request's concatenation of its pieces.
      this.#counters.set(flatString(key), c)
    } else if (now >= c.resetAt && c.inflight === 0) {
      // The window ended (Redis expired the key): the next batch opens the new one.
      c.base = 0
      c.resetAt = now + this.#windowMs
    }
    return c
  }

  /** Sends the counter's unsent hits (one batch at a time per counter); resolves when confirmed. */
  #send (key: string, c: Counter): Promise<void> {
    if (c.sending !== null) return c.sending
    if (c.unsent === 0) return Promise.resolve()
    const n = c.unsent
    c.unsent = 0
    c.inflight += n
    c.sending = (async () => {
      try {
        const [count, ttl] = await orStoreUnavailable(this.#redis.gwCountBy(key, n, this.#windowMs))
        c.base = count
        c.resetAt = Date.now() + ttl
        this.#warned = false
      } catch (err) {
        // Kept for the next batch; a request past the allowance waits for a batch and gets the 503.
        c.unsent += n
        throw err
      } finally {
        c.inflight -= n
        c.sending = null
      }
    })()
    return c.sending
  }

  #sendAll (): void {
    const now = Date.now()
    for (const [key, c] of this.#counters) {
      if (c.unsent > 0) {
        this.#send(key, c).catch((err: unknown) => {
          if (!this.#warned) this.#log.warn({ err }, 'request counters: batch not sent; kept for the next one')
          this.#warned = true
        })
      } else if (c.inflight === 0 && now >= c.resetAt) {
        this.#counters.delete(key)
      }
    }
  }
}
