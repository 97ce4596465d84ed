/**
 * The identity assertion of a proxied request (X-Gateway-Assertion, src/proxy/identity-assertion.ts),
 * taken before forwarding: reply-from builds the upstream headers synchronously, so it is signed
 * (or reused from the cache) in the guard and kept on the request.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AssertionCache } from './assertion-cache.js'
import { identityAssertion } from './identity-assertion.js'
import type { ProxyRoute } from './route-table.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The identity assertion for the upstream, signed (or reused) by the proxy guard. */
    upstreamAssertion: string | null
  }
}

/**
 * Sets `request.upstreamAssertion` for an admitted request on `route`: at once when the assertion
 * is cached or none is needed (undefined), else a promise of it being set.
 */
export type AssertRequest = (request: FastifyRequest, route: ProxyRoute) => Promise<void> | undefined

export function proxyAssertions (fastify: FastifyInstance): AssertRequest {
  const cache = new AssertionCache()
  return (request, route) => {
    // A public route forwards no identity: no assertion either.
    if (route.public === true) return undefined
    const assertion = identityAssertion(fastify, cache, route.upstream, request)
    if (typeof assertion === 'string') {
      request.upstreamAssertion = assertion
      return undefined
    }
    return assertion.then((signed) => { request.upstreamAssertion = signed })
  }
}
