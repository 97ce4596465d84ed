/** POST /auth/verify: is this access or refresh token live, revocation included? (4.3) */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { decodeJwt } from 'jose'
import { gatewayError } from '../../errors.js'
import { VerifyBodySchema, VerifyResponseSchema, problems } from '../../schemas.js'
import { claimsClient, verifyClientToken } from '../../clients/verify-client-token.js'

/** The token_type the token claims, read without trusting it (verification follows). */
function claimedType (token: string): 'access' | 'refresh' {
  try {
    return decodeJwt(token).token_type === 'refresh' ? 'refresh' : 'access'
  } catch {
    throw gatewayError('token_invalid', 'malformed token')
  }
}

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
    const { token } = request.body
    const type = claimedType(token)
    if (type === 'access' && claimsClient(token)) return await verifyClientToken(fastify, token)
    const claims = await fastify.tokens.verify(token, type)
    const live = type === 'access'
      ? await fastify.sessions.isAlive(claims.sub, claims.sid)
      : await fastify.sessions.isRefreshLive(claims.sub, claims.sid, claims.jti)
    if (!live) throw gatewayError('token_revoked')
    return { valid: true as const, token_type: type, sub: claims.sub, exp: claims.exp }
  })
}

export default verify
