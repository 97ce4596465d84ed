/**
 * The identity assertion an upstream receives for an admitted caller (X-Gateway-Assertion): for
 * a machine client its id and scopes, for a user the live roles, username, session and, for a
 * delegated token, who acts for the user. Signed once per (upstream, token, live roles[, bound
 * request]) and reused from the cache (src/proxy/assertion-cache.ts). The gateway's own proxy and
 * forward authentication (which binds it to the original method and path) both take it from here.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { nowSeconds } from '../tokens/token-service.js'
import type { AssertionCache } from './assertion-cache.js'
import { clientAssertionClaims } from './client-caller.js'
import { delegationClaims } from './delegated-caller.js'

/** Forward authentication binds the assertion to the request it was asked about. */
export interface AssertionBinding { method: string, path: string }

/** The assertion for an authenticated caller (request.auth or request.client set by the decision). */
export async function identityAssertion (fastify: FastifyInstance, cache: AssertionCache, upstream: string, request: FastifyRequest,
  binding?: AssertionBinding): Promise<string> {
  const auth = request.auth
  const client = request.client
  const bound = binding === undefined ? '' : `|${binding.method} ${binding.path}`
  const extra = binding === undefined ? {} : { method: binding.method, path: binding.path }
  if (client !== null) {
    return await cache.get(`${upstream}|${client.jti}${bound}`, nowSeconds(), () =>
      fastify.tokens.signAssertion(upstream, client.sub, { ...clientAssertionClaims(client), ...extra }))
  }
  if (auth === null) throw new TypeError('an identity assertion needs an authenticated caller')
  // Keyed by the live roles too: a role change applies to the assertion at once.
  return await cache.get(`${upstream}|${auth.jti}|${auth.roles.join(',')}${bound}`, nowSeconds(), () =>
    fastify.tokens.signAssertion(upstream, auth.sub,
      { roles: auth.roles, username: auth.username, sid: auth.sid, ...delegationClaims(auth), ...extra }))
}
