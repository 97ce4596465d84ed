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
import type { ProofJtiClaim } from '../../dpop/proof-jti.js'
import { presentedAccess, type PresentedAccess } from './dpop.js'

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

/** The caller behind an access token the gateway accepts right now. */
export type LiveAccess = { kind: 'user', claims: AccessClaims } | { kind: 'client', claims: ClientAccessClaims }

export interface AcceptOptions {
  /** Count the request against the caller's per-minute limit (proxied routes); limit headers go on this reply. */
  countOn?: FastifyReply
  /** Record refused tokens as security events (default true); introspection records its own event instead. */
  record?: boolean
  /** Refuse (403) a machine client's token before any store lookup: the gateway's own endpoints. */
  usersOnly?: boolean
  /**
   * How the token came on a protected request: its sender constraints (DPoP proof, fingerprint
   * cookie) are checked, a proof's jti claimed in the session or client check (src/plugins/app/dpop.ts).
   */
  presented?: PresentedAccess
  /** Set by acceptAccessToken: the proof jti to claim in the session check. */
  proofJti?: ProofJtiClaim
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: refuses the request unless it carries a live access token. */
    authenticate: Handler
    /**
     * The proxy's authentication: a user's or a machine client's live token (the route's roles or
     * scopes authorize it afterwards). `counted`: against the caller's API_USER_LIMIT or
     * API_CLIENT_LIMIT (429 past it), in the session check's round trip.
     */
    authenticateProxied: (request: FastifyRequest, reply: FastifyReply, counted: boolean) => Promise<void>
    /**
     * The one decision on an access token that the proxy, the gateway's own endpoints and token
     * introspection share: signature and claims, then the session alive with the user's live roles
     * (user active), or the machine client still registered. Throws the 401 a request would get.
     */
    acceptAccessToken: (request: FastifyRequest, token: string, opts?: AcceptOptions) => Promise<LiveAccess>
    /** The user half of acceptAccessToken, for claims verified elsewhere (a gateway assertion at token exchange). */
    acceptUserClaims: (request: FastifyRequest, claims: AccessClaims, opts?: AcceptOptions) => Promise<AccessClaims>
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

/** The verified claims may be shared by the token cache: never changed in place, a copy when the roles differ. */
function claimsWithRoles (claims: AccessClaims, roles: string[]): AccessClaims {
  if (roles.length !== claims.roles.length) return { ...claims, roles }
  for (let i = 0; i < roles.length; i++) if (roles[i] !== claims.roles[i]) return { ...claims, roles }
  return claims
}

export default fp(async (fastify) => {
  fastify.decorateRequest('auth', null)
  const apiLimit = fastify.config.limits.apiPerUser

  async function verifiedClaims (request: FastifyRequest, token: string, record: boolean): Promise<AccessClaims | ClientAccessClaims> {
    try {
      return await fastify.tokens.verifyAccess(token)
    } catch (err) {
      if (record) securityEvent(request, 'token_rejected', { reason: (err as { code?: string }).code })
      throw err
    }
  }

  function refuseRevoked (request: FastifyRequest, claims: AccessClaims, record: boolean): never {
    if (record) securityEvent(request, 'token_rejected', { user_id: claims.sub, reason: 'token_revoked' })
    throw gatewayError('token_revoked')
  }

  /**
   * The claims with the user's live roles (docs/live-user-state.md): a token minted before a role
   * change gets the new ones. At once when the session check's snapshot is trusted (the common
   * path takes no promise), else a promise.
   */
  function withLiveRoles (request: FastifyRequest, claims: AccessClaims, state: StateSnapshot): AccessClaims | Promise<AccessClaims> {
    const roles = fastify.userState.currentRoles(request, claims, state)
    return Array.isArray(roles) ? claimsWithRoles(claims, roles) : roles.then((live) => claimsWithRoles(claims, live))
  }

  async function acceptAccessToken (request: FastifyRequest, token: string, opts: AcceptOptions = {}): Promise<LiveAccess> {
    const record = opts.record !== false
    // A token verified before comes from the cache at once (the common path takes no promise here).
    const claims = fastify.tokens.cachedAccess(token) ?? await verifiedClaims(request, token, record)
    const reply = opts.countOn
    if (isClientClaims(claims) && opts.usersOnly === true) throw gatewayError('forbidden', 'not for machine clients')
    const proof = opts.presented === undefined ? undefined : fastify.dpop.checkSender(request, opts.presented, claims)
    const proofJti = proof === undefined ? undefined : await proof
    if (isClientClaims(claims)) {
      if (reply !== undefined) {
        await fastify.authenticateClient(request, reply, claims, proofJti)
      } else if (!await fastify.clients.isTokenLive(claims.client_id, claims.jti)) {
        if (record) securityEvent(request, 'token_rejected', { client_id: claims.client_id, reason: 'client_revoked' })
        throw gatewayError('token_revoked')
      }
      return { kind: 'client', claims }
    }
    return { kind: 'user', claims: await acceptUserClaims(request, claims, proofJti === undefined ? opts : { ...opts, proofJti }) }
  }

  async function acceptUserClaims (request: FastifyRequest, claims: AccessClaims, opts: AcceptOptions = {}): Promise<AccessClaims> {
    const record = opts.record !== false
    const reply = opts.countOn
    const result = reply !== undefined
      ? await fastify.sessions.isAliveCounted(claims.sub, claims.sid, LIMIT_WINDOW_MS, opts.proofJti)
      : await fastify.sessions.check(claims.sub, claims.sid, opts.proofJti === undefined ? {} : { proofJti: opts.proofJti })
    if (result.replayed === true) throw fastify.dpop.replayed(request, claims.sub)
    if (!result.alive) refuseRevoked(request, claims, record)
    const withRoles = withLiveRoles(request, claims, result.state)
    const live = withRoles instanceof Promise ? await withRoles : withRoles
    if (reply !== undefined) {
      const limited = applyWindowCount(reply, { limit: apiLimit, count: result.count, ttlMs: result.ttlMs })
      if (limited !== null) {
        securityEvent(request, 'rate_limited', { user_id: claims.sub, limit: 'api' })
        throw limited
      }
    }
    return live
  }
  fastify.decorate('acceptAccessToken', acceptAccessToken)
  fastify.decorate('acceptUserClaims', acceptUserClaims)

  function presentedToken (request: FastifyRequest): PresentedAccess {
    const presented = presentedAccess(request)
    if (presented === undefined) throw gatewayError('token_missing')
    return presented
  }

  fastify.decorate('authenticate', async (request: FastifyRequest) => {
    // Machine clients reach proxied routes only (see client-auth.ts), never the gateway's own;
    // nor do delegated tokens (token exchange), which reach their one upstream's routes only.
    const presented = presentedToken(request)
    const live = await acceptAccessToken(request, presented.token, { usersOnly: true, presented })
    if (live.kind === 'client') throw gatewayError('forbidden', 'not for machine clients')
    if (live.claims.act !== undefined) throw gatewayError('forbidden', 'not for delegated tokens')
    request.auth = live.claims
  })

  fastify.decorate('authenticateProxied', async (request: FastifyRequest, reply: FastifyReply, counted: boolean) => {
    const presented = presentedToken(request)
    const live = await acceptAccessToken(request, presented.token, counted ? { countOn: reply, presented } : { presented })
    if (live.kind === 'user') request.auth = live.claims
    else request.client = live.claims
  })

  fastify.decorate('requireRole', (...roles: string[]) => async (request: FastifyRequest) => {
    if (!roles.some((role) => request.auth?.roles.includes(role) === true)) {
      securityEvent(request, 'access_denied', { user_id: request.auth?.sub, roles })
      throw gatewayError('forbidden')
    }
  })
}, { name: 'authenticate', dependencies: ['token-service', 'session-store', 'user-state', 'client-auth', 'dpop'] })
