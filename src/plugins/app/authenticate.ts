/**
 * Bearer authentication: a strictly verified access token whose session is alive. The session
 * check is the request's one Redis round trip (on proxied routes it also counts the per-user
 * limit); the signature check may come from the verified-token cache.
 */
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { gatewayError } from '../../errors.js'
import { applyWindowCount, LIMIT_WINDOW_MS } from '../../limits/limit-headers.js'
import { securityEvent } from '../../lib/security-events.js'
import { isClientClaims, type AccessClaims, type ClientAccessClaims } from '../../tokens/claims.js'
import type { StateSnapshot } from '../../sessions/session-store.js'

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: refuses the request unless it carries a live access token. */
    authenticate: Handler
    /** As `authenticate`, and counts the request against the caller's API_USER_LIMIT (429 past it). */
    authenticateCounted: Handler
    /** preHandler factory: refuses (403) a caller that has none of the roles. */
    requireRole: (...roles: string[]) => Handler
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
  const apiLimit = fastify.config.limits.apiPerUser

  async function verifiedClaims (request: FastifyRequest): Promise<AccessClaims | ClientAccessClaims> {
    const token = bearerToken(request)
    if (token === undefined) throw gatewayError('token_missing')
    try {
      return await fastify.tokens.verifyAccess(token)
    } catch (err) {
      securityEvent(request, 'token_rejected', { reason: (err as { code?: string }).code })
      throw err
    }
  }

  function refuseRevoked (request: FastifyRequest, claims: AccessClaims): never {
    securityEvent(request, 'token_rejected', { user_id: claims.sub, reason: 'token_revoked' })
    throw gatewayError('token_revoked')
  }

  /** The claims with the user's live roles (contract 10): a token minted before a role change gets the new ones. */
  async function withLiveRoles (request: FastifyRequest, claims: AccessClaims, state: StateSnapshot): Promise<AccessClaims> {
    const roles = await fastify.userState.currentRoles(request, claims, state)
    // The verified claims may be shared by the token cache: never changed in place.
    return roles.length === claims.roles.length && roles.every((r, i) => r === claims.roles[i]) ? claims : { ...claims, roles }
  }

  fastify.decorate('authenticate', async (request: FastifyRequest) => {
    const claims = await verifiedClaims(request)
    // Machine clients reach proxied routes only (see client-auth.ts), never the gateway's own.
    if (isClientClaims(claims)) throw gatewayError('forbidden', 'not for machine clients')
    const result = await fastify.sessions.check(claims.sub, claims.sid)
    if (!result.alive) refuseRevoked(request, claims)
    request.auth = await withLiveRoles(request, claims, result.state)
  })

  fastify.decorate('authenticateCounted', async (request: FastifyRequest, reply: FastifyReply) => {
    const claims = await verifiedClaims(request)
    if (isClientClaims(claims)) return await fastify.authenticateClient(request, reply, claims)
    const result = await fastify.sessions.isAliveCounted(claims.sub, claims.sid, LIMIT_WINDOW_MS)
    if (!result.alive) refuseRevoked(request, claims)
    request.auth = await withLiveRoles(request, claims, result.state)
    const limited = applyWindowCount(reply, { limit: apiLimit, count: result.count, ttlMs: result.ttlMs })
    if (limited !== null) {
      securityEvent(request, 'rate_limited', { user_id: claims.sub, limit: 'api' })
      throw limited
    }
  })

  fastify.decorate('requireRole', (...roles: string[]) => async (request: FastifyRequest) => {
    if (!roles.some((role) => request.auth?.roles.includes(role) === true)) {
      securityEvent(request, 'access_denied', { user_id: request.auth?.sub, roles })
      throw gatewayError('forbidden')
    }
  })
}, { name: 'authenticate', dependencies: ['token-service', 'session-store', 'user-state', 'client-auth'] })
