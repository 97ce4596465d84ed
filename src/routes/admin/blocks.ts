/** GET /admin/blocks and DELETE /admin/blocks/{id}: active lockouts and IP blocks (docs/audit-and-dashboard.md). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { NoContent, problems } from '../../schemas.js'
import { adminOnly } from './admin-only.js'

const BlockSchema = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('account'), Type.Literal('ip')]),
  ip: Type.String(),
  username: Type.Optional(Type.String()),
  until: Type.String({ format: 'date-time' }),
  failures: Type.Integer()
})

const blocks: FastifyPluginAsyncTypebox = async (fastify) => {
  const admin = { preHandler: adminOnly(fastify) }

  fastify.get('/admin/blocks', {
    ...admin,
    schema: {
      tags: ['admin'],
      security: [{ bearer: [] }],
      summary: 'Active login lockouts and IP blocks (role admin)',
      response: { 200: Type.Object({ blocks: Type.Array(BlockSchema) }), ...problems(401, 403, 429, 503) }
    }
  }, async () => ({ blocks: await fastify.blocks.list() }))

  fastify.delete('/admin/blocks/:id', {
    ...admin,
    schema: {
      tags: ['admin'],
      security: [{ bearer: [] }],
      summary: 'Lift a lockout or an IP block (role admin)',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 204: NoContent, ...problems(401, 403, 404, 429, 503) }
    }
  }, async (request, reply) => {
    const lifted = await fastify.blocks.lift(request.params.id)
    if (lifted === null) throw gatewayError('not_found', 'no such block')
    securityEvent(request, 'block_lifted', { by: request.auth!.sub, block_id: lifted.id, kind: lifted.kind, blocked_ip: lifted.ip
      || undefined })
    return reply.code(204).send(null)
  })
}

export default blocks
