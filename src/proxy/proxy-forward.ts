/**
 * Forwarding an admitted request on the route it was admitted with. A GET without a body takes the
 * direct path (src/proxy/direct-forward.ts) when its upstream allows it (PROXY_DIRECT_GET, never
 * the users service); every other request goes through @fastify/reply-from. Both paths share the
 * deadline (upstream-deadline.ts), the headers both ways (forwarded-headers.ts, response-headers.ts)
 * and the error handler (upstream-errors.ts); docs/proxy-paths.md describes the flow.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { escapeDottedSegments } from './dotted-segments.js'
import { forwardDirect, isDirectRequest } from './direct-forward.js'
import { forwardedHeaders } from './forwarded-headers.js'
import { handshakeOf, withoutTicket } from '../live/ws-upgrade.js'

export function forward (request: FastifyRequest, reply: FastifyReply): void {
  const upstream = request.proxyRoute!.upstream
  const url = request.url
  const query = url.indexOf('?')
  const path = query === -1 ? url : url.slice(0, query)
  const dest = upstream.basePath === '' ? path : upstream.basePath + path
  if (handshakeOf(request) !== undefined) {
    // WebSockets are relayed by src/live/ws-proxy.ts, the ticket taken out of the query.
    request.server.live.forwardHandshake(request, reply, request.proxyRoute!.route, {
      origin: upstream.origin,
      path: withoutTicket(query === -1 ? dest : dest + url.slice(query)),
      headers: forwardedHeaders(request, request.headers),
      timeoutMs: upstream.direct.timeoutMs,
      maxPayload: request.proxyRoute!.bodyLimit
    })
    return
  }
  if (upstream.directGets && isDirectRequest(request)) {
    forwardDirect(request, reply, query === -1 ? dest : dest + url.slice(query), upstream.direct)
    return
  }
  // reply-from would refuse a segment such as `...` (see dotted-segments.ts).
  reply.from(escapeDottedSegments(dest), upstream.replyOptions)
}
