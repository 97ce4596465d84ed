/**
 * The live audit feed of one replica: ONE reader (`XREAD BLOCK` on its own connection, since a
 * blocking read would stall every other command of a shared one) fanned out to every SSE client.
 * The reader runs while somebody listens; a client that goes away is just removed from a set.
 * When Redis fails, every listener is ended (the clients reconnect and get 503 until it is back).
 */
import { AUDIT_STREAM, parseEntry, type AuditEvent, type StreamEntry } from './audit-log.js'
import type { RedisClient } from '../lib/redis-client.js'

export interface FeedListener {
  event: (e: AuditEvent) => void
  heartbeat: () => void
  /** The feed failed (Redis away) or the gateway is closing: end the response. */
  end: () => void
}

export interface FeedOptions {
  blockMs?: number
  heartbeatMs?: number
}

export class AuditFeed {
  readonly #listeners = new Set<FeedListener>()
  readonly #connect: () => RedisClient
  readonly #blockMs: number
  readonly #heartbeatMs: number
  #conn: RedisClient | null = null
  #reading = false
  #heartbeat: NodeJS.Timeout | null = null
  #closed = false

  constructor (connect: () => RedisClient, opts: FeedOptions = {}) {
    this.#connect = connect
    this.#blockMs = opts.blockMs ?? 5000
    this.#heartbeatMs = opts.heartbeatMs ?? 15_000
  }

  get listeners (): number { return this.#listeners.size }

  /** Resolves when the reader's connection answers; rejects (fast) when Redis is away. */
  async ready (): Promise<void> {
    if (this.#closed) throw new Error('feed closed')
    if (this.#conn === null) {
      const conn = this.#connect()
      conn.on('error', () => { /* surfaced by the failing read */ })
      this.#conn = conn
    }
    const conn = this.#conn
    if (conn.status === 'ready') return
    if (conn.status === 'wait' || conn.status === 'end' || conn.status === 'close') {
      await conn.connect().catch(() => { /* answered by the ping below */ })
    }
    await conn.ping()
  }

  /** Adds a listener (after `ready()`); returns its removal. */
  subscribe (listener: FeedListener): () => void {
    this.#listeners.add(listener)
    if (!this.#reading) void this.#read()
    this.#heartbeat ??= setInterval(() => { this.beat() }, this.#heartbeatMs).unref()
    return () => { this.#remove(listener) }
  }

  /** Sends every listener its heartbeat now (the timer calls it every `heartbeatMs`). */
  beat (): void {
    for (const l of this.#listeners) l.heartbeat()
  }

  #remove (listener: FeedListener): void {
    this.#listeners.delete(listener)
    if (this.#listeners.size === 0 && this.#heartbeat !== null) {
      clearInterval(this.#heartbeat)
      this.#heartbeat = null
    }
  }

  #failAll (): void {
    for (const l of [...this.#listeners]) {
      this.#remove(l)
      l.end()
    }
  }

  async #read (): Promise<void> {
    const conn = this.#conn
    if (conn === null) return
    this.#reading = true
    try {
      // Start after the newest entry now, not at `$` per call: nothing falls between two reads.
      const [latest] = await conn.xrevrange(AUDIT_STREAM, '+', '-', 'COUNT', 1) as StreamEntry[]
      let lastId = latest?.[0] ?? '0-0'
      while (this.#listeners.size > 0 && !this.#closed) {
        const res = await conn.xread('COUNT', 1000, 'BLOCK', this.#blockMs, 'STREAMS', AUDIT_STREAM,
          lastId) as Array<[string, StreamEntry[]]> | null
        for (const [id, fields] of res?.[0]?.[1] ?? []) {
          lastId = id
          const e = parseEntry(id, fields)
          if (e !== null) for (const l of this.#listeners) l.event(e)
        }
      }
    } catch {
      this.#failAll()
    } finally {
      this.#reading = false
      // A listener may have come while the last read was finishing.
      if (this.#listeners.size > 0 && !this.#closed) void this.#read()
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#failAll()
    this.#conn?.disconnect()
  }
}
