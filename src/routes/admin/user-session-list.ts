/**
 * For the dashboard's user search: GET /admin/users/{userId}/sessions lists a user's sessions
 * (with the user as the identity backend knows it), DELETE /admin/users/{userId}/sessions/{id}
 * revokes one of them. Revoking all is DELETE /admin/users/{userId}/sessions (user-sessions.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { NoContent, SessionSchema, problems } from '../../schemas.js'
import { Id } from '../../tokens/claims.js'
import { adminOnly } from './admin-only.js'

const isId = Compile(Id)

const userSessionList: FastifyPluginAsyncTypebox = async (fastify) => {
  const admin = { preHandler: adminOnly(fastify) }

  fastify.get('/admin/users/:userId/sessions', {
    ...admin,
    schema: {
      tags: ['admin'],
      security: [{ bearer: [] }],
      summary: "List a user's sessions (role admin)",
      params: Type.Object({ userId: Type.String({ maxLength: 128 }) }),
      response: {
        200: Type.Object({
          user: Type.Object({ id: Type.String(), username: Type.String(), roles: Type.Array(Type.String()), active: Type.Boolean() }),
          sessions: Type.Array(Type.Omit(SessionSchema, ['current']))
        }),
        ...problems(401, 403, 404, 429, 502, 503, 504)
      }
    }
  }, async (request) => {
    const { userId } = request.params
    if (!isId.Check(userId)) throw gatewayError('not_found', 'no such user')
    const [user, sessions] = await Promise.all([fastify.users.lookupUser(userId, request.id), fastify.sessions.list(userId)])
    if (user === null) throw gatewayError('not_found', 'no such user')
    return { user, sessions }
  })

  fastify.delete('/admin/users/:userId/sessions/:id', {
    ...admin,
    schema: {
      tags: ['admin'],
      security: [{ bearer: [] }],
      summary: 'Revoke one session of a user (role admin)',
      params: Type.Object({ userId: Type.String({ maxLength: 128 }), id: Type.String({ maxLength: 128 }) }),
      response: { 204: NoContent, ...problems(401, 403, 404, 429, 503) }
    }
  }, async (request, reply) => {
    const { userId, id } = request.params
    if (!isId.Check(userId) || !isId.Check(id) || !await fastify.sessions.revoke(userId, id)) throw gatewayError('not_found',
      'no such session')
    securityEvent(request, 'session_revoked', { user_id: userId, session_id: id, by: request.auth!.sub, reason: 'admin' })
    return reply.code(204).send(null)
  })
}

export default userSessionList
