/**
 * Bearer authentication: a strictly verified access token whose session is alive. The session
 * check is the request's one Redis round trip; the signature check may come from the cache.
 */
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import type { AccessClaims } from '../../tokens/claims.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: refuses the request unless it carries a live access token. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** preHandler factory: refuses (403) a caller that lacks the role. */
    requireRole: (role: string) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    /** The verified access token's claims; set by `authenticate`. */
    auth: AccessClaims | null
  }
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header !== 'string') return undefined
  const match = /^Bearer +([^\s]+) *$/i.exec(header)
  return match?.[1]
}

export default fp(async (fastify) => {
  fastify.decorateRequest('auth', null)

  async function authenticate (request: FastifyRequest): Promise<void> {
    const token = bearerToken(request)
    if (token === undefined) throw gatewayError('token_missing')
    let claims: AccessClaims
    try {
      claims = await fastify.tokens.verify(token, 'access')
    } catch (err) {
      securityEvent(request, 'token_rejected', { reason: (err as { code?: string }).code })
      throw err
    }
    if (!await fastify.sessions.isAlive(claims.sub, claims.sid)) {
      securityEvent(request, 'token_rejected', { user_id: claims.sub, reason: 'token_revoked' })
      throw gatewayError('token_revoked')
    }
    request.auth = claims
  }

  fastify.decorate('authenticate', authenticate)
  fastify.decorate('requireRole', (role: string) => async (request: FastifyRequest) => {
    if (request.auth?.roles.includes(role) !== true) {
      securityEvent(request, 'access_denied', { user_id: request.auth?.sub, role })
      throw gatewayError('forbidden')
    }
  })
}, { name: 'authenticate', dependencies: ['token-service', 'session-store'] })
