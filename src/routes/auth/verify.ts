/** POST /auth/verify: is this access or refresh token live, revocation included? (docs/tokens-and-sessions.md) */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { verifyLiveToken } from '../../auth/live-token.js'
import { VerifyBodySchema, VerifyResponseSchema, problems } from '../../schemas.js'

const verify: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/auth/verify', {
    config: { rateLimit: fastify.ipLimit('verify', fastify.config.limits.verifyPerIp) },
    schema: {
      tags: ['auth'],
      summary: 'Check whether a token is live',
      body: VerifyBodySchema,
      response: { 200: VerifyResponseSchema, ...problems(400, 401, 429, 503) }
    }
  }, async (request) => {
    const { type, claims } = await verifyLiveToken(fastify, request.body.token)
    return { valid: true as const, token_type: type, sub: claims.sub, exp: claims.exp }
  })
}

export default verify
