/**
 * The audit trail for admins: GET /admin/events (filters, newest first, a stable cursor),
 * GET /admin/events/counts (per event type, last hour and day) and GET /admin/events/stream
 * (Server-Sent Events from the replica's one shared reader). An open stream is judged again every
 * STREAM_CHECK_MS: it ends once its session is revoked, its user deactivated or no longer an admin.
 */
import { isIP } from 'node:net'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { gatewayError, GatewayError } from '../../errors.js'
import { storeUnavailable } from '../../lib/store-unavailable.js'
import { problems } from '../../schemas.js'
import type { AuditEvent } from '../../audit/audit-log.js'
import { adminOnly } from './admin-only.js'

const IsoTime = Type.String({ maxLength: 40, pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})$' })
/** A Redis stream id's parts are unsigned 64-bit integers. */
const MAX_ID_PART = 18446744073709551615n
/** How often an open stream's session, user state and role are checked again. */
export const STREAM_CHECK_MS = 2000
const StreamId = Type.String({ pattern: '^\\d{1,15}-\\d{1,20}$', description: 'next_cursor of the previous page' })

export const AuditEventSchema = Type.Object({
  id: Type.String(),
  time: Type.String({ format: 'date-time' }),
  event: Type.String(),
  user_id: Type.Optional(Type.String()),
  ip: Type.String(),
  request_id: Type.String()
}, { additionalProperties: true })

const CountsSchema = Type.Record(Type.String(), Type.Integer())

function isoMs (value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  // Stream ids count milliseconds since 1970: an earlier time is no position in the trail.
  if (Number.isNaN(ms) || ms < 0) throw gatewayError('invalid_request', `${name} is not a valid time (ISO 8601, 1970 or later)`)
  return ms
}

function streamCursor (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  if (value.split('-').some((part) => BigInt(part) > MAX_ID_PART)) throw gatewayError('invalid_request',
    'cursor is not a next_cursor of this API')
  return value
}

const auditEvents: FastifyPluginAsyncTypebox = async (fastify) => {
  const admin = { preHandler: adminOnly(fastify) }
  const tags = ['admin']
  const security = [{ bearer: [] }]

  fastify.get('/admin/events', {
    ...admin,
    schema: {
      tags,
      security,
      summary: 'Security events of the audit trail, newest first (role admin)',
      querystring: Type.Object({
        event: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })),
        user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        ip: Type.Optional(Type.String({ minLength: 2, maxLength: 64 })),
        since: Type.Optional(IsoTime),
        until: Type.Optional(IsoTime),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        cursor: Type.Optional(StreamId)
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ events: Type.Array(AuditEventSchema), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
        ...problems(400, 401, 403, 429, 503) }
    }
  }, async (request) => {
    const q = request.query
    if (q.ip !== undefined && isIP(q.ip) === 0) throw gatewayError('invalid_request', 'ip is not an IP address')
    try {
      return await fastify.audit.page({
        event: q.event,
        userId: q.user_id,
        ip: q.ip,
        sinceMs: isoMs(q.since, 'since'),
        untilMs: isoMs(q.until, 'until'),
        limit: q.limit ?? 100,
        cursor: streamCursor(q.cursor)
      })
    } catch (err) {
      if ((err as { code?: string }).code === 'invalid_request') throw err
      // Whatever else Redis refuses as an id is the client's input, not an outage.
      if (err instanceof Error && err.name === 'ReplyError' && /Invalid stream ID/i.test(err.message)) throw gatewayError(
        'invalid_request', 'invalid since, until or cursor')
      throw storeUnavailable(err)
    }
  })

  fastify.get('/admin/events/counts', {
    ...admin,
    schema: {
      tags,
      security,
      summary: 'Security events per type over the last hour and the last day (role admin)',
      response: { 200: Type.Object({ hour: CountsSchema, day: CountsSchema }), ...problems(401, 403, 429, 503) }
    }
  }, async () => {
    try {
      return await fastify.audit.counts()
    } catch (err) {
      throw storeUnavailable(err)
    }
  })

  fastify.get('/admin/events/stream', {
    ...admin,
    schema: {
      tags,
      security,
      summary: 'New security events as Server-Sent Events (role admin)',
      description: 'text/event-stream: one `data:` JSON event per message with its stream id as `id:`, and `: heartbeat` comments. 503 ' +
        'when Redis is away. The stream ends within 5 s once its session is revoked or its user deactivated or no longer an admin; ' +
          `at most ${fastify.streamSlots.max} open streams per session (429 beyond). HEAD answers the headers only.`,
      response: { 200: Type.String({ description: 'text/event-stream' }), ...problems(401, 403, 429, 503) }
    }
  }, async (request, reply) => {
    const claims = request.auth!
    try {
      await fastify.auditFeed.ready()
    } catch (err) {
      throw storeUnavailable(err)
    }
    // A HEAD holds nothing open: it takes no stream slot.
    const slot = request.method === 'HEAD' ? null : await fastify.streamSlots.take(claims.sub, claims.sid)
    if (slot === null && request.method !== 'HEAD') {
      throw gatewayError('rate_limited', `at most ${fastify.streamSlots.max} open event streams per session`, { 'retry-after': '5' })
    }
    const res = reply.raw
    // The security headers set so far (helmet, request id) go out with the stream's own.
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = String(value)
    reply.hijack()
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive'
    })
    if (slot === null) {
      // HEAD: the headers only, there is no body to stream.
      res.end()
      return
    }
    res.write('retry: 2000\n: connected\n\n')
    let unsubscribe = (): void => {}
    let ended = false
    const end = (): void => {
      if (ended) return
      ended = true
      clearInterval(checks)
      unsubscribe()
      if (!res.writableEnded) res.end()
      slot.release().catch(() => { /* the slot goes stale */ })
    }
    const write = (chunk: string): void => {
      // A client that does not keep up is dropped instead of buffering without bound.
      if (res.writableLength > 1 << 20) { end(); return }
      res.write(chunk)
    }
    /** Is the caller still an admin with a live session? The stream ends as soon as not. */
    const stillAllowed = async (): Promise<boolean> => {
      const result = await fastify.sessions.check(claims.sub, claims.sid)
      if (!result.alive) return false
      try {
        return (await fastify.userState.currentRoles(request, claims, result.state)).includes('admin')
      } catch (err) {
        if (err instanceof GatewayError && err.statusCode === 401) return false
        throw err
      }
    }
    const checks = setInterval(() => {
      if (Date.now() >= claims.exp * 1000) { end(); return }
      // Redis or the users service away: the stream ends too (the dashboard reconnects and gets 503).
      Promise.all([stillAllowed(), slot.renew()]).then(([allowed]) => { if (!allowed) end() }, end)
    }, STREAM_CHECK_MS)
    unsubscribe = fastify.auditFeed.subscribe({
      event: (e: AuditEvent) => { write(`id: ${e.id}\ndata: ${JSON.stringify(e)}\n\n`) },
      heartbeat: () => { write(': heartbeat\n\n') },
      end
    })
    request.raw.on('close', end)
    res.on('close', end)
  })
}

export default auditEvents
