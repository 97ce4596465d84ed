/**
 * The dashboard's views of the audit trail beyond single pages (docs/audit-and-dashboard.md):
 * GET /admin/events/buckets, events per type and minute (last hour) or hour (last day), bucketed
 * here from the counters every append keeps; and GET /admin/events/export, the whole filtered
 * trail as NDJSON (one event per line, newest first), streamed page by page so that an export of
 * the full retention never sits in memory.
 */
import { isIP } from 'node:net'
import { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { eventBuckets } from '../../audit/event-buckets.js'
import type { AuditEvent, EventQuery } from '../../audit/audit-log.js'
import { gatewayError } from '../../errors.js'
import { storeUnavailable } from '../../lib/store-unavailable.js'
import { problems } from '../../schemas.js'
import { adminOnly } from './admin-only.js'

const IsoTime = Type.String({ maxLength: 40, pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})$' })
/** Events read from the Stream per step of an export. */
const EXPORT_PAGE = 1000

function isoMs (value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) throw gatewayError('invalid_request', `${name} is not a valid time`)
  return ms
}

const eventCounts: FastifyPluginAsyncTypebox = async (fastify) => {
  const admin = { preHandler: adminOnly(fastify) }
  const tags = ['admin']
  const security = [{ bearer: [] }]

  fastify.get('/admin/events/buckets', {
    ...admin,
    schema: {
      tags,
      security,
      summary: 'Security events per type and time bucket: the last hour by minute, the last day by hour (role admin)',
      querystring: Type.Object({
        window: Type.Optional(Type.Union([Type.Literal('hour'), Type.Literal('day')], { default: 'hour' }))
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          window: Type.Union([Type.Literal('hour'), Type.Literal('day')]),
          bucket_seconds: Type.Integer({ description: '60 for the hour, 3600 for the day' }),
          times: Type.Array(Type.String({ format: 'date-time' }),
            { description: 'start of each bucket, oldest first; the last one is the current, partial bucket' }),
          series: Type.Record(Type.String(), Type.Array(Type.Integer()),
            { description: 'per event type, one count per bucket; types without events in the window are absent' })
        }),
        ...problems(400, 401, 403, 429, 503)
      }
    }
  }, async (request) => {
    try {
      return await eventBuckets(fastify.redis, request.query.window ?? 'hour')
    } catch (err) {
      throw storeUnavailable(err)
    }
  })

  fastify.get('/admin/events/export', {
    ...admin,
    schema: {
      tags,
      security,
      summary: 'The audit trail, filtered as GET /admin/events, as NDJSON (role admin)',
      description: 'application/x-ndjson: one event per line, newest first, every matching event of the retention (no limit, no cursor). ' +
        'Redis failing before the first byte is a 503; failing during the export cuts the connection without the final chunk, so a ' +
          'truncated file is never mistaken for a complete one.',
      querystring: Type.Object({
        event: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })),
        user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        ip: Type.Optional(Type.String({ minLength: 2, maxLength: 64 })),
        since: Type.Optional(IsoTime),
        until: Type.Optional(IsoTime)
      }, { additionalProperties: false }),
      // A stream, sent as it is (Fastify does not serialize streams); the OpenAPI document shows a string.
      response: { 200: Type.Unsafe<Readable>({ type: 'string', description: 'application/x-ndjson' }),
        ...problems(400, 401, 403, 429, 503) }
    }
  }, async (request, reply) => {
    const q = request.query
    if (q.ip !== undefined && isIP(q.ip) === 0) throw gatewayError('invalid_request', 'ip is not an IP address')
    const query: EventQuery = { event: q.event, userId: q.user_id, ip: q.ip, sinceMs: isoMs(q.since, 'since'),
      untilMs: isoMs(q.until, 'until'), limit: EXPORT_PAGE }
    let first: { events: AuditEvent[], next_cursor: string | null }
    try {
      first = await fastify.audit.page(query)
    } catch (err) {
      throw storeUnavailable(err)
    }
    const audit = fastify.audit
    async function * lines (): AsyncGenerator<string> {
      let page = first
      for (;;) {
        if (page.events.length > 0) yield page.events.map((e) => JSON.stringify(e) + '\n').join('')
        if (page.next_cursor === null) return
        page = await audit.page({ ...query, cursor: page.next_cursor })
      }
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-')
    return reply
      .type('application/x-ndjson; charset=utf-8')
      .header('content-disposition', `attachment; filename="audit-${stamp}.ndjson"`)
      .send(Readable.from(lines()))
  })
}

export default eventCounts
