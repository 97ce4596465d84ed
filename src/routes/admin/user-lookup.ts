/**
 * GET /admin/users?username=NAME: the dashboard's search by name. The identity backend finds the
 * user (GET /internal/users?username=, docs/identity-backend.md): the gateway keeps no usernames
 * of its own. The answer is the same as GET /admin/users/{userId}/sessions: the user's state and
 * sessions, on one page.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { gatewayError } from '../../errors.js'
import { SessionSchema, problems } from '../../schemas.js'
import { adminOnly } from './admin-only.js'

const userLookup: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/admin/users', {
    preHandler: adminOnly(fastify),
    schema: {
      tags: ['admin'],
      security: [{ bearer: [] }],
      summary: "Find a user by username: their state and sessions (role admin)",
      querystring: Type.Object({ username: Type.String({ minLength: 1, maxLength: 150 }) }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          user: Type.Object({ id: Type.String(), username: Type.String(), roles: Type.Array(Type.String()), active: Type.Boolean() }),
          sessions: Type.Array(Type.Omit(SessionSchema, ['current']))
        }),
        ...problems(400, 401, 403, 404, 429, 502, 503, 504)
      }
    }
  }, async (request) => {
    const username = request.query.username.trim()
    if (username === '') throw gatewayError('invalid_request', 'username is empty')
    const user = await fastify.users.findUser(username, request.id)
    if (user === null) throw gatewayError('not_found', 'no such user')
    return { user, sessions: await fastify.sessions.list(user.id) }
  })
}

export default userLookup
