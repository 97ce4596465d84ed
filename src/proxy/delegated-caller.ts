/**
 * A delegated token (token exchange, src/routes/oauth/token-exchange.ts) on a proxied route: it is the
 * user's, so the route's roles apply as to the user's own token, and on top of them it reaches only
 * the routes of its one upstream and, when it was narrowed to scopes, only the routes and methods
 * that grant one of them (as a machine client's token). It can never do more than the user.
 */
import type { FastifyRequest } from 'fastify'
import { gatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import type { AccessClaims } from '../tokens/claims.js'
import { requiredScopes } from './client-caller.js'
import type { ProxyRoute } from './route-table.js'

/** May this delegated token use the route with this method (its upstream and scope)? */
export function delegationAllows (route: ProxyRoute, method: string, claims: AccessClaims): boolean {
  if (claims.upstream !== route.upstream) return false
  if (claims.scope === undefined) return true
  const required = requiredScopes(route, method)
  if (required === undefined) return false
  if (required.length === 0) return true
  const granted = claims.scope.split(' ')
  return required.some((s) => granted.includes(s))
}

/** Refuses (403) a delegated token outside its upstream or scope; a user's own token passes. */
export function requireDelegation (request: FastifyRequest, route: ProxyRoute, claims: AccessClaims, method = request.method): void {
  if (claims.act === undefined || delegationAllows(route, method, claims)) return
  securityEvent(request, 'access_denied', { user_id: claims.sub, act: claims.act.sub, upstream: route.upstream, reason: 'delegation' })
  throw gatewayError('forbidden', 'the delegated token does not reach this route')
}

/** The assertion's extra claim for a delegated request: the upstream learns who acts for the user. */
export function delegationClaims (claims: AccessClaims): Record<string, unknown> {
  return claims.act === undefined ? {} : { act: claims.act }
}
