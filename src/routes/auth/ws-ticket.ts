/**
 * POST /auth/ws-ticket: a single-use, 30-second ticket for a WebSocket handshake, bound to the
 * caller's session (src/live/ws-ticket.ts). Browsers cannot set headers on a WebSocket, so the
 * handshake carries `?ticket=` instead of a token; the gateway removes it before the upstream and
 * never logs it (docs/live-connections.md).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { presentedAccess } from '../../plugins/app/dpop.js'
import { tokenFailureLimit } from '../../limits/token-failure-limit.js'
import { TICKET_TTL_SECONDS } from '../../live/ws-ticket.js'
import { problems } from '../../schemas.js'
import { acceptEmptyJsonBody } from '../../lib/lenient-json.js'

const TicketSchema = Type.Object({
  ticket: Type.String({ description: 'Single use; the handshake carries it as the query parameter `ticket`' }),
  expires_in: Type.Literal(TICKET_TTL_SECONDS, { description: 'Seconds' })
})

const wsTicket: FastifyPluginAsyncTypebox = async (fastify) => {
  // No body is needed; an empty one with a JSON Content-Type is fine too.
  acceptEmptyJsonBody(fastify)
  // Refused tokens count per client IP (429 past PUBLIC_IP_LIMIT).
  fastify.addHook('preHandler', tokenFailureLimit(fastify).guarded(fastify.authenticate))
  fastify.post('/auth/ws-ticket', {
    schema: {
      security: [{ bearer: [] }],
      tags: ['sessions'],
      summary: 'A single-use ticket (30 s) for opening a WebSocket through the gateway',
      response: { 200: TicketSchema, ...problems(401, 429, 503) }
    }
  }, async (request) => {
    // `authenticate` accepted exactly this token (as Bearer, or as DPoP with its proof).
    return { ticket: await fastify.live.tickets.issue(presentedAccess(request)!.token), expires_in: TICKET_TTL_SECONDS }
  })
}

export default wsTicket
