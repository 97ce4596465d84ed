/**
 * Authentication of a machine client's access token on proxied routes: instead of the user's
 * session check, one script on the client's slot checks that the client still exists and counts
 * the request against API_CLIENT_LIMIT (the request's one Redis round trip). A deleted client's
 * tokens are refused from the next request on, on every replica.
 */
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { gatewayError } from '../../errors.js'
import { applyWindowCount, LIMIT_WINDOW_MS } from '../../limits/limit-headers.js'
import { securityEvent } from '../../lib/security-events.js'
import type { ClientAccessClaims } from '../../tokens/claims.js'
import type { ProofJtiClaim } from '../../dpop/proof-jti.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Checks a verified client token's client and counts the request (401 / 429). Sets request.client. */
    authenticateClient: (
      request: FastifyRequest,
      reply: FastifyReply,
      claims: ClientAccessClaims,
      proofJti?: ProofJtiClaim
    ) => Promise<void>
  }
  interface FastifyRequest {
    /** The verified access token's claims when the caller is a machine client; set by authentication. */
    client: ClientAccessClaims | null
  }
}

export default fp(async (fastify) => {
  fastify.decorateRequest('client', null)
  const limit = fastify.config.limits.apiPerClient

  fastify.decorate('authenticateClient', async (
    request: FastifyRequest,
    reply: FastifyReply,
    claims: ClientAccessClaims,
    proofJti?: ProofJtiClaim
  ) => {
    const result = await fastify.clients.checkCounted(claims.client_id, LIMIT_WINDOW_MS, claims.jti, proofJti)
    if (result.replayed === true) throw fastify.dpop.replayed(request, claims.sub)
    if (!result.alive) {
      securityEvent(request, 'token_rejected', { client_id: claims.client_id, reason: 'client_revoked' })
      throw gatewayError('token_revoked')
    }
    request.client = claims
    const limited = applyWindowCount(reply, { limit, count: result.count, ttlMs: result.ttlMs })
    if (limited !== null) {
      securityEvent(request, 'rate_limited', { client_id: claims.client_id, limit: 'api_client' })
      throw limited
    }
  })
}, { name: 'client-auth', dependencies: ['config', 'client-store', 'dpop'] })
