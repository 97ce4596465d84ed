/**
 * The proxy's authorization decision, in one place: the gateway's own proxy (src/routes/proxy/
 * proxy-routes.ts) and forward authentication (src/routes/forward-auth/check.ts) both call it, so
 * a request is judged the same way whichever path it takes. Route on the normalized path, method,
 * token (session and live state in one Redis round trip, the per-user limit counted in it), client
 * scopes or user roles, the public-route limit, failed authentications counted per client IP, and
 * (for the own proxy, which holds the upstream connection) the per-user concurrency cap.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError, gatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import { requireClientScope } from './client-caller.js'
import { requireDelegation } from './delegated-caller.js'
import type { ProxyRoute } from './route-table.js'
import { ConcurrencyCap } from './user-concurrency.js'
import { setProofTarget } from '../dpop/request-url.js'
import { requireFreshFactor, requireSecondFactor } from '../mfa/step-up.js'
import type { AccessClaims } from '../tokens/claims.js'

/** What the decision needs of the route table: the table is passed in, so it may be swapped. */
export interface RouteMatcher {
  match: (path: string) => ProxyRoute | undefined
}

export interface DecisionInput {
  /** The route table the request is judged by (the proxy's, which a reload may swap). */
  table: RouteMatcher
  /** The original request's method (the request's own on the proxy). */
  method: string
  /** The original request's normalized path, without query. */
  path: string
  /** The code of a path outside the table: the proxy's 404 (400 for a path it refused), forward authentication's 403. */
  unrouted: 'not_found' | 'invalid_request' | 'forbidden'
  /** The gateway itself carries the request to the upstream: the per-user in-flight cap applies. */
  holdsUpstream: boolean
  /**
   * The URL a DPoP proof must name when it is not the request's own (forward authentication: the
   * asking proxy's client request). The proof is checked in authentication (src/plugins/app/dpop.ts).
   */
  proofUrl?: string
}

export type ProxyDecision = (request: FastifyRequest, reply: FastifyReply, input: DecisionInput) => Promise<ProxyRoute>

export function proxyDecision (fastify: FastifyInstance): ProxyDecision {
  const concurrency = new ConcurrencyCap(fastify.config.upstreamUserConcurrency)
  const publicLimit = fastify.ipLimitHook('public', fastify.config.limits.publicPerIp)
  const roleChecks = new WeakMap<ProxyRoute, ReturnType<FastifyInstance['requireRole']>>()
  const roleCheck = (route: ProxyRoute): ReturnType<FastifyInstance['requireRole']> => {
    let check = roleChecks.get(route)
    if (check === undefined) {
      check = fastify.requireRole(...route.roles!)
      roleChecks.set(route, check)
    }
    return check
  }

  /** Second factors the route needs of a user (docs/mfa.md); without MFA_ENCRYPTION_KEY no one has one. */
  const { adminRequired } = fastify.config.mfa
  const mfaOn = fastify.config.mfa.key !== null
  function stepUp (claims: AccessClaims, route: ProxyRoute): void {
    if (route.stepUpMaxAge !== undefined) requireFreshFactor(mfaOn ? claims : {}, route.stepUpMaxAge)
    else if (adminRequired && route.roles?.includes('admin') === true) requireSecondFactor(claims)
  }

  return async function decide (request, reply, input) {
    const route = input.table.match(input.path)
    if (route === undefined || (route.methods !== undefined && !route.methods.includes(input.method))) {
      await publicLimit(request, reply) // counted like every 404
      throw gatewayError(input.unrouted)
    }
    if (route.public !== true) {
      if (input.proofUrl !== undefined) setProofTarget(request, { method: input.method, url: input.proofUrl })
      try {
        // The `api` class counts the request against the user in the session check's round trip.
        await fastify.authenticateProxied(request, reply, route.limit === 'api')
      } catch (err) {
        // No user to count against yet: failed authentications count per client IP, like public
        // routes, so guessing tokens is as slow as guessing routes.
        if (err instanceof GatewayError && err.statusCode === 401) await publicLimit(request, reply)
        throw err
      }
      // Machine clients are authorized by the route's scopes, users by its roles.
      // A delegated user token (token exchange) reaches only its upstream's routes, within its scope.
      if (request.client !== null) requireClientScope(request, route, request.client, input.method)
      else {
        requireDelegation(request, route, request.auth!, input.method)
        if ((route.roles ?? []).length > 0) await roleCheck(route)(request, reply)
        stepUp(request.auth!, route)
      }
      if (input.holdsUpstream) {
        // One caller must not occupy an upstream's whole pool: a slot until the answer is done.
        const caller = request.client?.sub ?? request.auth!.sub
        if (!concurrency.acquire(caller)) {
          securityEvent(request, 'rate_limited', { user_id: caller, limit: 'concurrency' })
          throw gatewayError('rate_limited', 'too many requests in flight', { 'retry-after': '1' })
        }
        // 'close' comes once per response: `on` spares the wrapper `once` makes per request.
        reply.raw.on('close', () => concurrency.release(caller))
      }
    }
    if (route.limit === 'public') await publicLimit(request, reply)
    return route
  }
}
