/**
 * An admin's view and reset of a user's second factors (docs/mfa.md): the list (never a secret), and
 * removal of every factor, which needs the admin's own second factor used within the last 5 minutes.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { securityEvent } from '../../lib/security-events.js'
import { describeFactor } from '../../mfa/factors.js'
import { requireFreshFactor } from '../../mfa/step-up.js'
import type { Mfa } from '../../plugins/app/mfa.js'
import { problems } from '../../schemas.js'
import { FactorListSchema, REMOVAL_MAX_AGE } from '../auth/mfa.js'
import { adminOnly } from './admin-only.js'

const userFactors: FastifyPluginAsyncTypebox = async (fastify) => {
  const mfa = fastify.mfa as Mfa
  const schema = {
    tags: ['admin'],
    security: [{ bearer: [] }],
    params: Type.Object({ userId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) })
  }

  fastify.get('/admin/users/:userId/factors', {
    preHandler: adminOnly(fastify),
    schema: {
      ...schema,
      summary: "A user's second factors (role admin)",
      response: { 200: FactorListSchema, ...problems(400, 401, 403, 429, 502, 503, 504) }
    }
  }, async (request) => {
    const factors = await mfa.factors.list(request.params.userId, request.id)
    return { factors: factors.map(describeFactor) }
  })

  fastify.delete('/admin/users/:userId/factors', {
    preHandler: adminOnly(fastify),
    schema: {
      ...schema,
      summary: "Remove every second factor of a user (role admin, and the admin's own second factor within 5 minutes)",
      response: { 200: Type.Object({ removed: Type.Integer() }), ...problems(400, 401, 403, 429, 502, 503, 504) }
    }
  }, async (request) => {
    requireFreshFactor(request.auth!, REMOVAL_MAX_AGE)
    const { userId } = request.params
    const factors = await mfa.factors.list(userId, request.id)
    for (const f of factors) await mfa.factors.remove(userId, f.id, request.id)
    securityEvent(request, 'mfa_removed', { user_id: userId, by: request.auth!.sub, factors: factors.map((f) => f.type), reset: true })
    return { removed: factors.length }
  })
}

export default userFactors
