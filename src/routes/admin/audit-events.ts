/**
 * The audit trail for admins (contract section 11): GET /admin/events (filters, newest first, a
 * stable cursor), GET /admin/events/counts (per event type, last hour and day) and
 * GET /admin/events/stream (Server-Sent Events from the replica's one shared reader).
 */
import { isIP } from 'node:net'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { gatewayError } from '../../errors.js'
import { storeUnavailable } from '../../lib/store-unavailable.js'
import { problems } from '../../schemas.js'
import type { AuditEvent } from '../../audit/audit-log.js'
import { adminOnly } from './admin-only.js'

const IsoTime = Type.String({ maxLength: 40, pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})$' })
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
  if (Number.isNaN(ms)) throw gatewayError('invalid_request', `${name} is not a valid time`)
  return ms
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
      response: { 200: Type.Object({ events: Type.Array(AuditEventSchema), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...problems(400, 401, 403, 429, 503) }
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
        cursor: q.cursor
      })
    } catch (err) {
      if ((err as { code?: string }).code === 'invalid_request') throw err
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
      description: 'text/event-stream: one `data:` JSON event per message with its stream id as `id:`, and `: heartbeat` comments. 503 when Redis is away.',
      response: { 200: Type.String({ description: 'text/event-stream' }), ...problems(401, 403, 429, 503) }
    }
  }, async (request, reply) => {
    try {
      await fastify.auditFeed.ready()
    } catch (err) {
      throw storeUnavailable(err)
    }
    const claims = request.auth!
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
    res.write('retry: 2000\n: connected\n\n')
    let unsubscribe = (): void => {}
    const end = (): void => { unsubscribe(); if (!res.writableEnded) res.end() }
    const write = (chunk: string): void => {
      // A client that does not keep up is dropped instead of buffering without bound.
      if (res.writableLength > 1 << 20) { end(); return }
      res.write(chunk)
    }
    unsubscribe = fastify.auditFeed.subscribe({
      event: (e: AuditEvent) => { write(`id: ${e.id}\ndata: ${JSON.stringify(e)}\n\n`) },
      heartbeat: () => {
        // The token was checked once, at connect: a stream outlives neither it nor its session.
        if (Date.now() >= claims.exp * 1000) { end(); return }
        fastify.sessions.isAlive(claims.sub, claims.sid).then((alive) => { if (alive) write(': heartbeat\n\n'); else end() }, end)
      },
      end
    })
    request.raw.on('close', end)
    res.on('close', end)
  })
}

export default auditEvents
