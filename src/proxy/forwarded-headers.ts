/**
 * The headers a proxied request carries to its upstream, built from the admitted request: the
 * same function on both proxy paths (src/proxy/direct-forward.ts and @fastify/reply-from), so the
 * upstream cannot tell them apart. What is removed and added is src/proxy/upstream-headers.ts.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { AnyRequest } from '../lib/request-types.js'
import type { AccessClaims } from '../tokens/claims.js'
import { identityHeaders, upstreamHeaders, type IdentityHeaders } from './upstream-headers.js'

/**
 * The X-Forwarded-For an upstream gets: the hops that TRUST_PROXY vouches for, then the peer.
 * Fastify's `request.ips` is [peer, ...forwarded addresses, nearest first] up to the first
 * untrusted one, so whatever a client wrote before that point is dropped. Without TRUST_PROXY
 * there is no `ips`: the peer alone.
 */
export function forwardedChain (request: AnyRequest): string {
  const ips = request.ips
  if (ips === undefined) return request.socket.remoteAddress ?? ''
  let chain = ips.at(-1) ?? ''
  for (let i = ips.length - 2; i >= 0; i--) chain += ', ' + ips[i]!
  return chain
}

/**
 * The identity headers of a user's claims, encoded once per claims object: the verified-token
 * cache hands the same object to every request of a token (live roles that differ from the
 * token's make a new one), so the hot path does not encode them again.
 */
const encoded = new WeakMap<AccessClaims, IdentityHeaders>()
function identityOf (auth: AccessClaims): IdentityHeaders {
  let headers = encoded.get(auth)
  if (headers === undefined) {
    headers = identityHeaders({ userId: auth.sub, username: auth.username, roles: auth.roles })
    encoded.set(auth, headers)
  }
  return headers
}

/** The upstream's request headers (reply-from's `rewriteRequestHeaders`; it sets Host itself). */
export function forwardedHeaders (request: AnyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return upstreamHeaders(headers, {
    requestId: request.id,
    forwardedFor: forwardedChain(request),
    proto: request.protocol,
    host: request.host,
    assertion: request.upstreamAssertion ?? '',
    identity: request.auth === null ? null : identityOf(request.auth),
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
