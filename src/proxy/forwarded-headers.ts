/**
 * The headers a proxied request carries to its upstream, built from the admitted request: the
 * same function on both proxy paths (src/proxy/direct-forward.ts and @fastify/reply-from), so the
 * upstream cannot tell them apart. What is removed and added is src/proxy/upstream-headers.ts.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { AnyRequest } from '../lib/request-types.js'
import { upstreamHeaders } from './upstream-headers.js'

/**
 * The X-Forwarded-For an upstream gets: the hops that TRUST_PROXY vouches for, then the peer.
 * Fastify's `request.ips` is [peer, ...forwarded addresses, nearest first] up to the first
 * untrusted one, so whatever a client wrote before that point is dropped.
 */
export function forwardedChain (request: AnyRequest): string {
  const ips = request.ips ?? [request.socket.remoteAddress ?? '']
  return [...ips].reverse().join(', ')
}

/** The upstream's request headers (reply-from's `rewriteRequestHeaders`; it sets Host itself). */
export function forwardedHeaders (request: AnyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return upstreamHeaders(headers, {
    requestId: request.id,
    forwardedFor: forwardedChain(request),
    proto: request.protocol,
    host: request.host,
    assertion: request.upstreamAssertion ?? '',
    identity: request.auth === null ? null : { userId: request.auth.sub, username: request.auth.username, roles: request.auth.roles },
    client: request.client === null ? null : { clientId: request.client.client_id, scopes: request.client.scope.split(' ') }
  })
}

/** The same headers with the Host reply-from sends (the upstream's host), for the direct path. */
export function forwardedHeadersWithHost (upstreamHost: string): (request: AnyRequest) => IncomingHttpHeaders {
  return (request) => {
    const headers = forwardedHeaders(request, request.headers)
    headers.host = upstreamHost
    return headers
  }
}
