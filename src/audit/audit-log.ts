/**
 * The audit trail (docs/audit-and-dashboard.md): every security event in one Redis Stream shared by all
 * replicas, trimmed by time (`MINID`) to AUDIT_RETENTION_DAYS and by length to AUDIT_MAX_EVENTS,
 * with per-minute and per-hour counters per event type for the dashboard. Appending is one script
 * call (one round trip) and fire-and-forget: a request never waits for it, and a Redis outage only
 * loses events.
 *
 * Refused traffic (refused tokens, 429s, 403s) needs no credential to cause, so it must not grow
 * the trail without bound: per client IP (an IPv6 client by its /64) and minute, the first
 * AGGREGATE_AFTER such events are stored one by one; the rest are only counted, and once the
 * minute is over one `events_aggregated` entry per client IP carries their count. The dashboard's
 * per-type counters still count every event.
 *
 * All keys share the hash tag `{gw:audit}`: on Redis Cluster the trail lives on one slot.
 */
import { defineScripts, type RedisClient } from '../lib/redis-client.js'
import { clientBucket } from '../limits/client-ip.js'

export const AUDIT_STREAM = '{gw:audit}:events'
export const minuteKey = (minute: number): string => `{gw:audit}:m:${minute}`
export const hourKey = (hour: number): string => `{gw:audit}:h:${hour}`
/** Per minute: refused events per client IP (`<ip>`) and per IP and event (`<ip>|<event>`) past the threshold. */
const refusedKey = (minute: number): string => `{gw:audit}:r:${minute}`
/** Minute buckets are summed over the last hour, hour buckets over the last day. */
const MINUTE_BUCKET_TTL_S = 2 * 3600
const HOUR_BUCKET_TTL_S = 26 * 3600
/** A minute's refused-traffic counts wait this long for the flush; minutes older than that are gone. */
const REFUSED_TTL_S = 600
/** Minutes are flushed once they are over by this much (replicas' clocks differ a little). */
const FLUSH_SETTLE_MS = 5000

/** Events that refused traffic causes, aggregated past the threshold per client IP and minute. */
export const AGGREGATED_EVENTS: ReadonlySet<string> = new Set(['token_rejected', 'rate_limited', 'access_denied', 'dpop_proof_rejected'])
/** Refused events stored one by one per client IP and minute before the rest are aggregated. */
export const AGGREGATE_AFTER = 20
export const AGGREGATE_EVENT = 'events_aggregated'

/**
 * KEYS[1] stream, KEYS[2] minute bucket, KEYS[3] hour bucket, KEYS[4] the minute's refused-traffic
 * hash. ARGV[1] MINID (ms), ARGV[2] the event as JSON, ARGV[3] event name, ARGV[4] minute TTL,
 * ARGV[5] hour TTL, ARGV[6] MAXLEN, ARGV[7] the client IP bucket ('' for events that are never
 * aggregated), ARGV[8] threshold, ARGV[9] refused-hash TTL, ARGV[10] request id.
 * ARGV[11] the Stream's TTL (the retention: a trail with no new event expires whole, like every
 * other key). Returns the entry id, or false when the event was only counted.
 */
export const appendEventLua = `
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('EXPIRE', KEYS[3], ARGV[5])
if ARGV[7] ~= '' then
  local n = redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
  redis.call('EXPIRE', KEYS[4], ARGV[9])
  if n > tonumber(ARGV[8]) then
    redis.call('HINCRBY', KEYS[4], ARGV[7] .. '|' .. ARGV[3], 1)
    redis.call('HSETNX', KEYS[4], ARGV[7] .. '#', ARGV[10])
    return false
  end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[6], '*', 'd', ARGV[2])
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[11])
return id
`

/**
 * KEYS[1] a past minute's refused-traffic hash, KEYS[2] stream. ARGV[1] threshold, ARGV[2] the
 * minute's start (ISO), ARGV[3] MAXLEN, ARGV[4] MINID, ARGV[5] the Stream's TTL. Appends one aggregated event per client IP
 * that went past the threshold and deletes the hash (so one replica flushes it). Returns how many.
 */
export const flushRefusedLua = `
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return 0 end
redis.call('DEL', KEYS[1])
local totals, events, first = {}, {}, {}
for i = 1, #all, 2 do
  local field, value = all[i], all[i + 1]
  local bar = string.find(field, '|', 1, true)
  if bar then
    local ip = string.sub(field, 1, bar - 1)
    events[ip] = events[ip] or {}
    events[ip][string.sub(field, bar + 1)] = tonumber(value)
  elseif string.sub(field, -1) == '#' then
    first[string.sub(field, 1, -2)] = value
  else
    totals[field] = tonumber(value)
  end
end
local n = 0
local threshold = tonumber(ARGV[1])
for ip, byEvent in pairs(events) do
  local entry = cjson.encode({ event = '${AGGREGATE_EVENT}', ip = ip, request_id = first[ip] or '', minute = ARGV[2],
    count = totals[ip] - threshold, events = byEvent })
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '*', 'd', entry)
  n = n + 1
end
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[4])
if n > 0 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
return n
`

interface AuditCommands {
  gwAuditAppend: (stream: string, minute: string, hour: string, refused: string, minId: string, json: string, event: string,
    minuteTtl: number, hourTtl: number, maxLen: number, ipBucket: string, threshold: number, refusedTtl: number, requestId: string,
      streamTtl: number) => Promise<string | null>
  gwAuditFlushRefused: (refused: string, stream: string, threshold: number, minute: string, maxLen: number, minId: string,
    streamTtl: number) => Promise<number>
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

/** Field names never stored, whatever a caller passes (docs/audit-and-dashboard.md). */
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
    // Entries written before every event had an `ip` still read as events.
    return { ip: 'unknown', request_id: '', ...data, id, time: timeOfId(id) } as AuditEvent
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

  readonly #maxEvents: number
  #flushTimer: NodeJS.Timeout | null = null

  constructor (redis: RedisClient, readonly retentionDays: number, private readonly onError: (err: unknown) => void = () => {},
    maxEvents = 1_000_000) {
    this.#redis = defineScripts<AuditCommands>(redis, {
      gwAuditAppend: { numberOfKeys: 4, lua: appendEventLua },
      gwAuditFlushRefused: { numberOfKeys: 2, lua: flushRefusedLua }
    })
    this.#maxEvents = maxEvents
  }

  /**
   * Fire-and-forget append; resolves to the entry id, or null when the event was only counted
   * (refused traffic past the threshold) or Redis refused it.
   */
  append (event: string, fields: Record<string, unknown>, nowMs = Date.now()): Promise<string | null> {
    const safe = safeFields(fields)
    const json = JSON.stringify({ event, ...safe })
    const minute = Math.floor(nowMs / 60_000)
    const hour = Math.floor(nowMs / 3_600_000)
    const ip = typeof safe.ip === 'string' ? safe.ip : 'unknown'
    const bucket = AGGREGATED_EVENTS.has(event) ? clientBucket(ip) : ''
    const requestId = typeof safe.request_id === 'string' ? safe.request_id : ''
    return this.#redis.gwAuditAppend(AUDIT_STREAM, minuteKey(minute), hourKey(hour), refusedKey(minute),
      minIdFor(nowMs, this.retentionDays), json, event,
      MINUTE_BUCKET_TTL_S, HOUR_BUCKET_TTL_S, this.#maxEvents, bucket, AGGREGATE_AFTER, REFUSED_TTL_S, requestId,
        this.retentionDays * 86_400)
      .catch((err: unknown) => { this.onError(err); return null })
  }

  /**
   * Appends the aggregated events of the minutes that are over (each minute once, by whichever
   * replica gets to it first); resolves to how many were appended.
   */
  async flushAggregated (nowMs = Date.now()): Promise<number> {
    const lastOver = Math.floor((nowMs - FLUSH_SETTLE_MS) / 60_000) - 1
    let appended = 0
    // The timer runs several times a minute: the last few minutes cover a replica that was busy.
    for (let minute = lastOver - 2; minute <= lastOver; minute++) {
      appended += await this.#redis.gwAuditFlushRefused(refusedKey(minute), AUDIT_STREAM, AGGREGATE_AFTER,
        new Date(minute * 60_000).toISOString(), this.#maxEvents, minIdFor(nowMs, this.retentionDays), this.retentionDays * 86_400)
    }
    return appended
  }

  /** Flushes every `intervalMs` until `close()`; a failed flush is retried at the next tick. */
  startFlushing (intervalMs = 10_000): void {
    this.#flushTimer ??= setInterval(() => {
      this.flushAggregated().catch((err: unknown) => { this.onError(err) })
    }, intervalMs).unref()
  }

  close (): void {
    if (this.#flushTimer !== null) clearInterval(this.#flushTimer)
    this.#flushTimer = null
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
