/**
 * Forward authentication: `/auth/check` (any method) and `/auth/check/*` (Envoy) answer another
 * proxy's question about one request with exactly the decision of the gateway's own proxy
 * (src/proxy/decide.ts). Registered only when FORWARD_AUTH_PROXIES is set; a caller not listed
 * there gets the 404 of a path that does not exist. See docs/forward-auth.md.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { gatewayError } from '../../errors.js'
import { sendProblem, toGatewayError, problemOf } from '../../lib/problem.js'
import { AssertionCache } from '../../proxy/assertion-cache.js'
import { proxyDecision } from '../../proxy/decide.js'
import { identityAssertion } from '../../proxy/identity-assertion.js'
import { encodeIdentityList, encodeIdentityValue } from '../../proxy/identity-encoding.js'
import { CHECK_PATH, forwardedClientIp, originalRequest, type OriginalRequest } from '../../forward-auth/original-request.js'
import { styleOf, type ForwardAuthStyle } from '../../forward-auth/proxy-list.js'
import { forwardedUrl } from '../../dpop/request-url.js'

export type ForwardAuthOptions = Record<never, never>

/**
 * nginx's `auth_request` passes only 2xx, 401 and 403 of its auth service (anything else becomes a
 * 500 without the answer's headers): for the `nginx` style a refusal is answered 401 (a 401) or
 * 403 (anything else), with the real status and problem in these headers for the shipped
 * configuration (deploy/edge/nginx/) to hand back to the client.
 */
export const CARRIED_STATUS = 'x-gateway-status'
export const CARRIED_PROBLEM = 'x-gateway-problem'

/** JSON for a header value: non-ASCII escaped, so the value is plain ASCII. */
function asciiJson (value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

interface Asked { style: ForwardAuthStyle, original?: OriginalRequest }

const HEADERS_ONLY = {
  summary: 'Forward authentication: the decision of the gateway\'s proxy for another proxy\'s request',
  tags: ['forward-auth'],
  response: {
    200: Type.Null({ description: 'allowed: identity headers and X-Gateway-Assertion to copy onto the upstream request' })
  }
}

export default async function forwardAuthRoutes (fastify: FastifyInstance, _opts: ForwardAuthOptions): Promise<void> {
  const proxies = fastify.config.forwardAuthProxies
  const decide = proxyDecision(fastify)
  const assertions = new AssertionCache()
  const notListedLimit = fastify.ipLimitHook('public', fastify.config.limits.publicPerIp)
  const asked = new WeakMap<FastifyRequest, Asked>()

  fastify.setErrorHandler((err, request, reply) => {
    const error = toGatewayError(err)
    if (error.code === 'store_unavailable') fastify.metrics?.redisErrors.inc()
    if (error.statusCode >= 500) request.log.error({ err: error.cause ?? err, code: error.code }, 'request failed')
    const context = asked.get(request)
    const instance = context?.original?.path
    if (context?.style === 'nginx') {
      reply.header(CARRIED_STATUS, String(error.statusCode)).header(CARRIED_PROBLEM, asciiJson(problemOf(error, request, instance)))
      sendProblem(error, request, reply, { status: error.statusCode === 401 ? 401 : 403, ...(instance === undefined ? {} : { instance }) })
    } else {
      sendProblem(error, request, reply, instance === undefined ? {} : { instance })
    }
    return reply
  })

  async function check (request: FastifyRequest, reply: FastifyReply, viaPath: boolean): Promise<void> {
    const style = styleOf(proxies, request.socket.remoteAddress)
    if (style === undefined || viaPath !== (style === 'envoy')) {
      // As if the endpoint did not exist (and counted like every 404).
      await notListedLimit(request, reply)
      throw gatewayError('not_found')
    }
    const context: Asked = { style }
    asked.set(request, context)
    // Limits and events concern the proxy's client, not the proxy.
    const clientIp = forwardedClientIp(request)
    if (clientIp !== undefined) Object.defineProperty(request, 'ip', { value: clientIp })
    const original = originalRequest(request, style)
    context.original = original
    // The own proxy's table in use now: a reload applies to both at once.
    // A DPoP proof names the client's request as the proxy received it.
    const proofUrl = forwardedUrl(request, original.path) ?? `${request.protocol}://${request.host}${original.path}`
    const route = await decide(request, reply, {
      table: fastify.proxyRouteTable(), method: original.method, path: original.path, unrouted: 'forbidden', holdsUpstream: false, proofUrl
    })
    const auth = request.auth
    const client = request.client
    reply.header('cache-control', 'no-store')
    // A public route forwards no identity: no identity headers and no assertion.
    if (route.public === true) {
      reply.code(200).send()
      return
    }
    // Bound to the original method and path: the upstream refuses it on any other request.
    const assertion = await identityAssertion(fastify, assertions, route.upstream, request,
      { method: original.method, path: original.path })
    if (client !== null) {
      reply.header('x-client-id', client.client_id).header('x-client-scopes', client.scope.split(' ').join(','))
    } else if (auth !== null) {
      // Percent-encoded as the own proxy sends them (src/proxy/identity-encoding.ts).
      reply.header('x-user-id', encodeIdentityValue(auth.sub))
        .header('x-user-name', encodeIdentityValue(auth.username))
        .header('x-user-roles', encodeIdentityList(auth.roles))
    }
    reply.header('x-gateway-assertion', assertion)
    reply.code(200).send()
  }

  fastify.all(CHECK_PATH, { schema: HEADERS_ONLY }, async (request, reply) => { await check(request, reply, false) })
  fastify.all(`${CHECK_PATH}/*`, { schema: HEADERS_ONLY }, async (request, reply) => { await check(request, reply, true) })
}
