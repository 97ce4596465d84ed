/**
 * A machine client on a proxied route (docs/machine-clients.md): the route's scopes authorize it (users are
 * authorized by roles instead), and the upstream learns it is a client, never a user.
 */
import type { FastifyRequest } from 'fastify'
import { gatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import type { ClientAccessClaims } from '../tokens/claims.js'
import type { ProxyRoute } from './route-table.js'

/** The scopes a route asks of a client for this method; undefined: clients may not use it. */
export function requiredScopes (route: ProxyRoute, method: string): readonly string[] | undefined {
  const scopes = route.scopes
  if (scopes === undefined) return undefined
  return scopes[method] ?? (method === 'HEAD' ? scopes.GET : undefined)
}

/** Does the client token hold one of the scopes the route requires for this method (an empty list: any client)? */
export function clientMayUse (route: ProxyRoute, method: string, claims: ClientAccessClaims): boolean {
  const required = requiredScopes(route, method)
  if (required === undefined) return false
  if (required.length === 0) return true
  const granted = claims.scope.split(' ')
  return required.some((s) => granted.includes(s))
}

/** Refuses (403) a client whose token lacks the route's scope for `method` (forward authentication: the original one). */
export function requireClientScope (request: FastifyRequest, route: ProxyRoute, claims: ClientAccessClaims, method = request.method): void {
  if (clientMayUse(route, method, claims)) return
  securityEvent(request, 'access_denied', { client_id: claims.client_id, scopes: requiredScopes(route, method) ?? [] })
  throw gatewayError('forbidden', 'the token lacks the scope this route requires')
}

/** The identity assertion's claims for a client: its id and scope, no username and no roles. */
export function clientAssertionClaims (claims: ClientAccessClaims): Record<string, unknown> {
  return { client_id: claims.client_id, scope: claims.scope, roles: [] }
}
