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

/**
 * The assertion for an authenticated caller (request.auth or request.client set by the decision):
 * the string itself when the cache has it (the hot path takes no promise), else a promise of the
 * new one.
 */
export function identityAssertion (fastify: FastifyInstance, cache: AssertionCache, upstream: string, request: FastifyRequest,
  binding?: AssertionBinding): string | Promise<string> {
  const auth = request.auth
  const client = request.client
  const bound = binding === undefined ? '' : `|${binding.method} ${binding.path}`
  const now = nowSeconds()
  if (client !== null) {
    const key = `${upstream}|${client.jti}${bound}`
    return cache.peek(key, now) ?? cache.get(key, now, () =>
      fastify.tokens.signAssertion(upstream, client.sub, { ...clientAssertionClaims(client), ...bindingClaims(binding) }))
  }
  if (auth === null) return Promise.reject(new TypeError('an identity assertion needs an authenticated caller'))
  // Keyed by the live roles too: a role change applies to the assertion at once.
  const key = `${upstream}|${auth.jti}|${auth.roles.join(',')}${bound}`
  return cache.peek(key, now) ?? cache.get(key, now, () =>
    fastify.tokens.signAssertion(upstream, auth.sub,
      { roles: auth.roles, username: auth.username, sid: auth.sid, ...delegationClaims(auth), ...bindingClaims(binding) }))
}

function bindingClaims (binding: AssertionBinding | undefined): Record<string, unknown> {
  return binding === undefined ? {} : { method: binding.method, path: binding.path }
}
