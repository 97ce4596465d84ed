/**
 * The connection pools of the upstreams, one per origin (upstreams of the same origin share one;
 * each request carries its own upstream's timeout). The route table can change at run time: a
 * reload asks for the pools of the new table's origins (unchanged ones keep their connections)
 * and retires the others. A retired pool still serves the requests that were admitted on the
 * previous table, and is closed (gracefully: running requests finish) after RETIRE_DELAY_MS.
 *
 * @fastify/reply-from takes one undici instance: `dispatcher` is it, and sends each request to the
 * pool of its origin.
 */
import type { Pool } from 'undici'
import { deadlinePool, type Callback, type DeadlinePool, type RequestOptions } from './upstream-pool.js'

/** How long a retired pool stays usable for requests admitted on the table before it. */
export const RETIRE_DELAY_MS = 10_000

/** Connections per upstream origin. */
const CONNECTIONS = 128

class PoolClosedError extends Error {
  override name = 'PoolClosedError'
  readonly code = 'UND_ERR_CLOSED'
  constructor () { super('the upstream was removed from the route table') }
}

export class UpstreamPools {
  readonly #live = new Map<string, DeadlinePool>()
  readonly #retiring = new Map<string, { pool: DeadlinePool, timer: NodeJS.Timeout }>()
  readonly #closing = new Set<Promise<void>>()

  /** `ca`: UPSTREAM_CA_FILE's certificates, trusted for https origins (always verified). */
  constructor (readonly defaultTimeoutMs: number, readonly retireDelayMs = RETIRE_DELAY_MS, readonly ca?: readonly string[]) {}

  readonly #route = (options: RequestOptions, callback: Callback): void => {
    const origin = String(options.origin)
    const pool = this.#live.get(origin) ?? this.#retiring.get(origin)?.pool
    if (pool === undefined) {
      callback(new PoolClosedError(), undefined)
      return
    }
    pool.send(options, callback)
  }

  /**
   * What reply-from calls: the request goes to the pool of its origin. reply-from uses only the
   * callback form (as src/proxy/upstream-pool.ts notes); its type asks for undici's overloads.
   */
  readonly dispatcher: Pick<Pool, 'request'> = { request: this.#route as Pool['request'] }

  /** The pool of an origin (made on first use, or taken back from retirement). */
  acquire (origin: string): DeadlinePool {
    const live = this.#live.get(origin)
    if (live !== undefined) return live
    const retiring = this.#retiring.get(origin)
    if (retiring !== undefined) {
      clearTimeout(retiring.timer)
      this.#retiring.delete(origin)
      this.#live.set(origin, retiring.pool)
      return retiring.pool
    }
    const pool = deadlinePool(origin, { connections: CONNECTIONS, timeoutMs: this.defaultTimeoutMs, ca: this.ca })
    this.#live.set(origin, pool)
    return pool
  }

  /** Retires the pools of every origin not in `origins`. */
  keepOnly (origins: ReadonlySet<string>): void {
    for (const [origin, pool] of this.#live) {
      if (origins.has(origin)) continue
      this.#live.delete(origin)
      const timer = setTimeout(() => {
        this.#retiring.delete(origin)
        this.#track(pool.close())
      }, this.retireDelayMs)
      timer.unref()
      this.#retiring.set(origin, { pool, timer })
    }
  }

  #track (closing: Promise<void>): void {
    const done = closing.catch(() => {}).then(() => { this.#closing.delete(done) })
    this.#closing.add(done)
  }

  /** Pools open (in use or retiring, or still closing): what the reload test watches. */
  get size (): { live: number, retiring: number, closing: number } {
    return { live: this.#live.size, retiring: this.#retiring.size, closing: this.#closing.size }
  }

  /** Destroys every pool (the gateway is closing). */
  async destroy (): Promise<void> {
    const pools = [...this.#live.values(), ...[...this.#retiring.values()].map((r) => r.pool)]
    for (const r of this.#retiring.values()) clearTimeout(r.timer)
    this.#live.clear()
    this.#retiring.clear()
    await Promise.all([...pools.map((p) => p.destroy()), ...this.#closing])
  }
}
