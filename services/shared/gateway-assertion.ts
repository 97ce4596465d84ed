/**
 * What makes a stub service trust a request: a valid `X-Gateway-Assertion` (ES256 JWT signed by the
 * gateway, `aud` = this service, at most 60 s old). Without one every route but /healthz is 401,
 * so going around the gateway gets nothing.
 */
import fp from 'fastify-plugin'
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose'
import { AssertionVerifier } from './assertion-verifier.js'

export interface Caller {
  sub: string
  username?: string
  roles: string[]
  scope?: string
  /** Set when the caller is a machine client (docs/machine-clients.md); `sub` is then `client:<client_id>`. */
  client_id?: string
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null
  }
}

export interface AssertionOptions {
  /** This service's name: the assertion's required `aud`. */
  audience: string
  issuer: string
  keys: JWTVerifyGetKey
}

/** The gateway's JWKS over HTTP, cached, with a fetch timeout and a cool-down between refetches. */
export function remoteGatewayKeys (jwksUrl: string): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 2000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 })
}

export default fp<AssertionOptions>(async (fastify, opts) => {
  fastify.decorateRequest('caller', null)
  // Each distinct assertion is verified once and reused until it expires (see assertion-verifier.ts).
  const verifier = new AssertionVerifier(opts)
  fastify.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz') return
    const assertion = request.headers['x-gateway-assertion']
    try {
      if (typeof assertion !== 'string') throw new Error('missing assertion')
      // Bound assertions (forward authentication) must name this request's method and path.
      const payload = await verifier.verify(assertion, { method: request.method, url: request.url })
      request.caller = {
        sub: payload.sub,
        roles: Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [],
        ...(typeof payload.username === 'string' ? { username: payload.username } : {}),
        ...(typeof payload.scope === 'string' ? { scope: payload.scope } : {}),
        ...(typeof payload.client_id === 'string' ? { client_id: payload.client_id } : {})
      }
    } catch {
      return reply.code(401).type('application/problem+json').send({
        type: 'urn:auth-gateway:problem:gateway_assertion_required',
        title: 'Gateway assertion required',
        status: 401,
        code: 'gateway_assertion_required'
      })
    }
  })
}, { name: 'gateway-assertion' })
