/** DELETE /admin/users/{userId}/sessions: an admin revokes every session of a user (docs/tokens-and-sessions.md). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { NoContent, problems } from '../../schemas.js'
import { Id } from '../../tokens/claims.js'
import { Compile } from 'typebox/compile'
import { adminOnly } from './admin-only.js'

const isId = Compile(Id)

const adminSessions: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.delete('/admin/users/:userId/sessions', {
    preHandler: adminOnly(fastify),
    schema: {
      tags: ['admin'],
      security: [{ bearer: [] }],
      summary: 'Revoke every session of a user (role admin)',
      params: Type.Object({ userId: Type.String({ maxLength: 128 }) }),
      response: { 204: NoContent, ...problems(401, 403, 404, 429, 503) }
    }
  }, async (request, reply) => {
    const { userId } = request.params
    if (!isId.Check(userId)) throw gatewayError('not_found', 'no such user')
    const revoked = await fastify.sessions.revokeAll(userId)
    securityEvent(request, 'session_revoked', { user_id: userId, by: request.auth!.sub, sessions: revoked, reason: 'admin' })
    return reply.code(204).send(null)
  })
}

export default adminSessions
