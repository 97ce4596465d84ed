/**
 * The audit trail (contract section 11): every security event in one Redis Stream shared by all
 * replicas, trimmed by time (`XADD ... MINID`) to AUDIT_RETENTION_DAYS, with per-minute and
 * per-hour counters per event type for the dashboard. Appending is one script call (one round
 * trip) and fire-and-forget: a request never waits for it, and a Redis outage only loses events.
 * All keys share the hash tag `{gw:audit}`: on Redis Cluster the trail lives on one slot.
 */
import type { RedisClient } from '../sessions/session-store.js'

export const AUDIT_STREAM = '{gw:audit}:events'
const minuteKey = (minute: number): string => `{gw:audit}:m:${minute}`
const hourKey = (hour: number): string => `{gw:audit}:h:${hour}`
/** Minute buckets are summed over the last hour, hour buckets over the last day. */
const MINUTE_BUCKET_TTL_S = 2 * 3600
const HOUR_BUCKET_TTL_S = 26 * 3600

/**
 * KEYS[1] stream, KEYS[2] minute bucket, KEYS[3] hour bucket. ARGV[1] MINID (ms), ARGV[2] the
 * event as JSON, ARGV[3] event name, ARGV[4] minute TTL, ARGV[5] hour TTL, ARGV[6] stream TTL (the
 * retention: a trail with no new event expires whole, like every other key). Returns the entry id.
 */
export const appendEventLua = `
local id = redis.call('XADD', KEYS[1], 'MINID', ARGV[1], '*', 'd', ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return id
`

interface AuditCommands {
  gwAuditAppend: (stream: string, minute: string, hour: string, minId: string, json: string, event: string, minuteTtl: number, hourTtl: number, streamTtl: number) => Promise<string>
}

/** One stored event as the API shows it. */
export interface AuditEvent {
  id: string
  time: string
  event: string
  ip: string
  request_id: string
  user_id?: string
  [field: string]: unknown
}

export interface EventQuery {
  event?: string | undefined
  userId?: string | undefined
  ip?: string | undefined
  sinceMs?: number | undefined
  untilMs?: number | undefined
  limit: number
  cursor?: string | undefined
}

/** Field names never stored, whatever a caller passes (contract section 8). */
const SECRET_FIELD = /token|password|passwd|secret|cookie|authorization|^access$|^refresh$/i
/** A JWT (three base64url parts, the first a JSON header) is dropped wherever it shows up. */
const JWT_LIKE = /eyJ[\w-]{5,}\.[\w-]+\.[\w-]*/

/** The event's fields without anything that could be a credential. */
export function safeFields (fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || SECRET_FIELD.test(key)) continue
    if (typeof value === 'string' && JWT_LIKE.test(value)) continue
    out[key] = value
  }
  return out
}

/** The smallest stream id kept: everything older than the retention goes (exact trim). */
export function minIdFor (nowMs: number, retentionDays: number): string {
  return String(Math.max(0, nowMs - retentionDays * 86_400_000))
}

export function timeOfId (id: string): string {
  return new Date(Number(id.slice(0, id.indexOf('-')))).toISOString()
}

export function parseEntry (id: string, fields: string[]): AuditEvent | null {
  const at = fields.indexOf('d')
  if (at < 0 || at + 1 >= fields.length) return null
  try {
    const data = JSON.parse(fields[at + 1]!) as Record<string, unknown>
    return { ...data, id, time: timeOfId(id) } as AuditEvent
  } catch {
    return null
  }
}

/** Entries examined per page request at most: a filter matching nothing cannot scan the whole trail. */
export const MAX_SCAN = 20_000
const BATCH = 500

export type StreamEntry = [id: string, fields: string[]]

export class AuditLog {
  readonly #redis: RedisClient & AuditCommands

  constructor (redis: RedisClient, readonly retentionDays: number, private readonly onError: (err: unknown) => void = () => {}) {
    redis.defineCommand('gwAuditAppend', { numberOfKeys: 3, lua: appendEventLua })
    this.#redis = redis as RedisClient & AuditCommands
  }

  /** Fire-and-forget append; resolves to the entry id (or null when Redis refused it). */
  append (event: string, fields: Record<string, unknown>, nowMs = Date.now()): Promise<string | null> {
    const json = JSON.stringify({ event, ...safeFields(fields) })
    const minute = Math.floor(nowMs / 60_000)
    const hour = Math.floor(nowMs / 3_600_000)
    return this.#redis.gwAuditAppend(AUDIT_STREAM, minuteKey(minute), hourKey(hour), minIdFor(nowMs, this.retentionDays), json, event, MINUTE_BUCKET_TTL_S, HOUR_BUCKET_TTL_S, this.retentionDays * 86_400)
      .catch((err: unknown) => { this.onError(err); return null })
  }

  /**
   * Newest first. The cursor is the id of the last entry examined: ids never change and new
   * events are newer than every page, so paging is stable while events keep arriving.
   */
  async page (q: EventQuery): Promise<{ events: AuditEvent[], next_cursor: string | null }> {
    const oldest = Math.max(q.sinceMs ?? 0, Date.now() - this.retentionDays * 86_400_000)
    let end = q.cursor !== undefined ? `(${q.cursor}` : q.untilMs !== undefined ? String(q.untilMs) : '+'
    const start = String(oldest)
    const events: AuditEvent[] = []
    let scanned = 0
    while (scanned < MAX_SCAN) {
      const batch = await this.#redis.xrevrange(AUDIT_STREAM, end, start, 'COUNT', BATCH) as StreamEntry[]
      for (const [id, fields] of batch) {
        scanned++
        end = `(${id}`
        const e = parseEntry(id, fields)
        if (e === null || !matches(e, q)) continue
        events.push(e)
        if (events.length === q.limit) return { events, next_cursor: id }
      }
      if (batch.length < BATCH) return { events, next_cursor: null }
    }
    return { events, next_cursor: end.slice(1) }
  }

  /** Events per type over the last hour (minute buckets) and the last day (this hour and the 23 before). */
  async counts (nowMs = Date.now()): Promise<{ hour: Record<string, number>, day: Record<string, number> }> {
    const minute = Math.floor(nowMs / 60_000)
    const hour = Math.floor(nowMs / 3_600_000)
    const keys = [
      ...Array.from({ length: 60 }, (_, i) => minuteKey(minute - i)),
      ...Array.from({ length: 24 }, (_, i) => hourKey(hour - i))
    ]
    const pipeline = this.#redis.pipeline()
    for (const key of keys) pipeline.hgetall(key)
    const results = await pipeline.exec() ?? []
    const sum = (from: number, to: number): Record<string, number> => {
      const out: Record<string, number> = {}
      for (const [err, value] of results.slice(from, to)) {
        if (err !== null) throw err
        for (const [event, n] of Object.entries(value as Record<string, string>)) out[event] = (out[event] ?? 0) + Number(n)
      }
      return out
    }
    return { hour: sum(0, 60), day: sum(60, 84) }
  }
}

function matches (e: AuditEvent, q: EventQuery): boolean {
  return (q.event === undefined || e.event === q.event) &&
    (q.userId === undefined || e.user_id === q.userId) &&
    (q.ip === undefined || e.ip === q.ip)
}
