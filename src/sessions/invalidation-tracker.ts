/**
 * Redis client-side caching for the session cache (src/sessions/session-cache.ts), in the RESP2
 * form: a dedicated data connection whose reads Redis tracks (`CLIENT TRACKING on REDIRECT <id>`),
 * and an invalidation connection subscribed to `__redis__:invalidate` that receives, for every key
 * the data connection has read, a message when the key changes, expires or is evicted, and a null
 * message when the database is flushed.
 *
 * The cache may only be filled from reads that Redis is known to track, and only while the
 * invalidation connection is known to deliver: `generation()` is null otherwise, and changes each
 * time either connection is lost, so an answer to a read sent before the loss never fills the cache.
 * The invalidation connection is pinged every HEARTBEAT_MS; without an answer for STALE_MS the
 * cache is not trusted (requests go to Redis), and past LOST_MS the connection is dropped and
 * set up again.
 */
import { Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { RedisClient } from '../lib/redis-client.js'
import type { CacheTracker } from './session-cache.js'

const CHANNEL = '__redis__:invalidate'
const HEARTBEAT_MS = 250
const STALE_MS = 1000
const LOST_MS = 2000

/** Keys that changed, or null: everything (a flush, or a lost connection). */
export type InvalidationListener = (keys: string[] | null) => void

export class InvalidationTracker implements CacheTracker {
  /** The connection whose reads are tracked: only cache-filling reads go through it. */
  readonly data: Redis
  readonly #inv: Redis
  readonly #log: FastifyBaseLogger
  readonly #listener: InvalidationListener
  #generation = 0
  #tracking = false
  #lastPong = 0
  #setup: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #closed = false
  /** The invalidation connection's client id once it is subscribed (until it closes). */
  #invId: number | undefined
  /** Counts the invalidation connection's closes: a setup that saw one in between is void. */
  #invCloses = 0
  #dataCloses = 0

  constructor (url: string, options: RedisOptions, listener: InvalidationListener, log: FastifyBaseLogger) {
    this.#log = log
    this.#listener = listener
    this.data = new Redis(url, { ...options, lazyConnect: true, connectionName: 'gw-session-cache' })
    // Subscriptions are made again by #establish, after the new connection's id is known.
    this.#inv = new Redis(
      url,
      { ...options, lazyConnect: true, autoResubscribe: false, enableAutoPipelining: false, connectionName: 'gw-invalidations' }
    )
    for (const conn of [this.data, this.#inv]) {
      conn.on('error', (err: Error) => { this.#log.debug({ err: { message: err.message } }, 'session cache connection error') })
      conn.on('close', () => {
        if (conn === this.#inv) { this.#invId = undefined; this.#invCloses++ } else this.#dataCloses++
        this.#lose()
      })
      conn.on('ready', () => { this.#schedule() })
    }
    this.#inv.on('messageBuffer', (channel: Buffer, message: Buffer[] | Buffer | null) => {
      if (channel.toString() !== CHANNEL) return
      // A null message (flush of the database) invalidates everything.
      if (message === null) this.#listener(null)
      else this.#listener(Array.isArray(message) ? message.map((k) => k.toString()) : [message.toString()])
    })
  }

  start (): void {
    this.data.connect().catch(() => { /* retried by the retry strategy */ })
    this.#inv.connect().catch(() => { /* retried by the retry strategy */ })
    this.#timer = setInterval(() => { this.#heartbeat() }, HEARTBEAT_MS)
    this.#timer.unref()
  }

  /** The current generation while tracked reads may fill the cache and it may be trusted; else null. */
  generation (now: number = Date.now()): number | null {
    return this.#tracking && now - this.#lastPong < STALE_MS ? this.#generation : null
  }

  /** True while tracking is on in the generation of `gen` (a fill read in `gen` may be kept). */
  stillValid (gen: number): boolean {
    return this.#tracking && this.#generation === gen
  }

  /**
   * Redis queues the invalidations of a change while it runs it and writes them, with the change's
   * own reply, before it reads the next commands: a PING answered after that reply proves they are
   * in every replica's socket.
   */
  get trackedNodes (): number { return this.#tracking ? 1 : 0 }

  async settle (main: RedisClient): Promise<void> {
    await main.ping()
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    this.#lose()
    await Promise.all([this.data, this.#inv].map(async (c) => { await c.quit().catch(() => c.disconnect()) }))
  }

  #lose (): void {
    const wasTracking = this.#tracking
    this.#tracking = false
    this.#generation++
    this.#listener(null)
    if (wasTracking && !this.#closed) this.#log.warn('session cache: invalidations lost; every request checks Redis until they are back')
  }

  #schedule (): void {
    this.#setup = this.#setup.then(() => this.#establish()).catch((err: unknown) => {
      this.#log.warn({ err }, 'session cache: tracking setup failed; every request checks Redis')
    })
  }

  async #establish (): Promise<void> {
    if (this.#closed || this.#tracking || this.data.status !== 'ready' || this.#inv.status !== 'ready') return
    const closes = this.#invCloses
    const dataCloses = this.#dataCloses
    if (this.#invId === undefined) {
      const id = Number(await this.#inv.client('ID'))
      await this.#inv.subscribe(CHANNEL)
      if (closes !== this.#invCloses) return
      this.#invId = id
    }
    await this.data.call('CLIENT', 'TRACKING', 'on', 'REDIRECT', String(this.#invId))
    await this.#inv.ping()
    if (closes !== this.#invCloses || dataCloses !== this.#dataCloses || this.data.status !== 'ready'
      || this.#inv.status !== 'ready') return
    this.#lastPong = Date.now()
    this.#generation++
    this.#tracking = true
    this.#log.info('session cache: tracking on')
  }

  #heartbeat (): void {
    if (!this.#tracking) return
    if (Date.now() - this.#lastPong > LOST_MS) {
      this.#log.warn('session cache: the invalidation connection stopped answering; connecting again')
      this.#lose()
      this.#inv.disconnect(true)
      return
    }
    this.#inv.ping().then(() => { this.#lastPong = Date.now() }, () => { /* the next beat decides */ })
  }
}
