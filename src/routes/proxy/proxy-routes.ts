/**
 * Default-deny proxying (contract section 5): one @fastify/http-proxy registration per upstream
 * mount point of the route table. Each request is matched on its normalized path (see
 * src/proxy/normalize-path.ts, applied before routing), authenticated and authorized by its route,
 * then forwarded with the headers of src/proxy/upstream-headers.ts. Upstream failures become
 * 502 `upstream_unavailable` / 504 `upstream_timeout`; nothing is ever retried.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import proxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import { gatewayError } from '../../errors.js'
import { sendProblem } from '../../plugins/app/error-handler.js'
import type { AnyReply, AnyRequest } from '../../lib/request-types.js'
import { AssertionCache } from '../../proxy/assertion-cache.js'
import { clientAssertionClaims } from '../../proxy/client-caller.js'
import { splitUrl } from '../../proxy/normalize-path.js'
import { RouteTable, type ProxyRoute, type UpstreamName } from '../../proxy/route-table.js'
import { upstreamHeaders } from '../../proxy/upstream-headers.js'
import { clientResponseHeaders } from '../../proxy/response-headers.js'
import { escapeDottedSegments } from '../../proxy/dotted-segments.js'
import { DEADLINE_CODE, deadlinePool } from '../../proxy/upstream-pool.js'
import { forwardDirect, isDirectRequest } from '../../proxy/direct-forward.js'
import { proxyDecision } from '../../proxy/decide.js'
import { pinClientIp } from '../../lib/security-events.js'
import { userChanges } from '../../proxy/user-changes.js'
import { BODY_LIMIT } from '../../server-options.js'
import { nowSeconds } from '../../tokens/token-service.js'

/** Connection-level failures that mean the upstream is not there (502). */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED'])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_TIMEOUT', 'FST_REPLY_FROM_HTTP_REQUEST_TIMEOUT', DEADLINE_CODE])

/** Walks an error's cause chain for a code. */
function codesOf (err: unknown): string[] {
  const codes: string[] = []
  for (let e = err as { code?: unknown, cause?: unknown } | undefined, depth = 0; e !== undefined && e !== null && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string') codes.push(e.code)
  }
  return codes
}

/** Counts a streamed body and fails it past the limit (a chunked body has no Content-Length). */
class BodyLimit extends Transform {
  #seen = 0
  exceeded = false
  constructor (readonly limit: number) { super() }
  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.limit) {
      this.exceeded = true
      done(gatewayError('payload_too_large'))
      return
    }
    done(null, chunk)
  }
}

/**
 * The X-Forwarded-For an upstream gets: the hops that TRUST_PROXY vouches for, then the peer.
 * Fastify's `request.ips` is [peer, ...forwarded addresses, nearest first] up to the first
 * untrusted one, so whatever a client wrote before that point is dropped.
 */
function forwardedChain (request: AnyRequest): string {
  const ips = request.ips ?? [request.socket.remoteAddress ?? '']
  return [...ips].reverse().join(', ')
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The identity assertion for the upstream, signed (or reused) by the proxy guard. */
    upstreamAssertion: string | null
    /** The byte counter of a chunked proxied body, when there is one. */
    proxiedBodyLimit: BodyLimit | null
  }
}

export default async function proxyRoutes (fastify: FastifyInstance, opts: { routes?: readonly ProxyRoute[], table?: RouteTable }): Promise<void> {
  const table = opts.table ?? new RouteTable(opts.routes)
  const assertions = new AssertionCache()
  const { upstreams, upstreamTimeoutMs } = fastify.config
  const decide = proxyDecision(fastify, table)
  const changes = userChanges(fastify)
  fastify.decorateRequest('upstreamAssertion', null)
  fastify.decorateRequest('proxiedBodyLimit', null)
  // Synchronous unless a password-check reservation is left (no promise per proxied request).
  fastify.addHook('onResponse', (request, _reply, done) => {
    const pending = changes.releaseUnsettled(request)
    if (pending === null) done()
    else pending.then(() => done(), done)
  })

  /** The decision (src/proxy/decide.ts); the body limit; then the identity assertion. */
  async function guard (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const route = await decide(request, reply, { method: request.method, path: splitUrl(request.url).path, unrouted: 'not_found', holdsUpstream: true })
    // The users service's answers may carry user changes, whose events are written after the
    // body was proxied: the client IP is taken while the socket is still there.
    if (route.upstream === 'users') pinClientIp(request)
    if (route.passwordCheck === true && request.auth !== null && request.client === null) await changes.reserveAttempt(request)
    const length = Number(request.headers['content-length'] ?? 0)
    if (length > BODY_LIMIT) {
      // The unread body would otherwise be drained on a kept-alive connection: close it instead.
      reply.header('connection', 'close')
      throw gatewayError('payload_too_large')
    }
    if (request.headers['transfer-encoding'] !== undefined && request.body !== undefined && request.body !== null) {
      const limiter = new BodyLimit(BODY_LIMIT)
      ;(request.body as NodeJS.ReadableStream).pipe(limiter)
      request.proxiedBodyLimit = limiter
      request.body = limiter
    }
    // Signed (or reused) here because reply-from builds the upstream headers synchronously.
    const auth = request.auth
    const client = request.client
    // Keyed by the live roles too: a role change applies to the assertion at once (contract 10).
    const key = client !== null ? `${route.upstream}|${client.jti}` : auth === null ? `${route.upstream}|public` : `${route.upstream}|${auth.jti}|${auth.roles.join(',')}`
    request.upstreamAssertion = await assertions.get(key, nowSeconds(), () => client !== null
      ? fastify.tokens.signAssertion(route.upstream, client.sub, clientAssertionClaims(client))
      : fastify.tokens.signAssertion(route.upstream, auth?.sub ?? 'anonymous', auth === null ? { roles: [] } : { roles: auth.roles, username: auth.username }))
  }

  function onUpstreamError (upstream: UpstreamName) {
    return (reply: AnyReply, { error }: { error: Error }) => {
      const request = reply.request
      const limiter = request.proxiedBodyLimit
      const codes = codesOf(error)
      let code: 'payload_too_large' | 'upstream_timeout' | 'upstream_unavailable'
      if (limiter?.exceeded === true) code = 'payload_too_large'
      else if (codes.some((c) => TIMEOUT_CODES.has(c))) code = 'upstream_timeout'
      else code = 'upstream_unavailable'
      if (!UNAVAILABLE_CODES.has(codes.at(-1) ?? '') && code === 'upstream_unavailable') {
        request.log.warn({ upstream, codes }, 'unexpected upstream error')
      }
      request.log.warn({ upstream, code }, 'upstream request failed')
      fastify.metrics.upstreamErrors.inc({ upstream, code })
      // Answer without reusing the connection: the client's body may be half read.
      reply.header('connection', 'close')
      sendProblem(gatewayError(code), request, reply)
    }
  }

  /** The headers the upstream receives (src/proxy/upstream-headers.ts), on both proxy paths. */
  const headersFor = (request: AnyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders => upstreamHeaders(headers, {
    requestId: request.id,
    forwardedFor: forwardedChain(request),
    proto: request.protocol,
    host: request.host,
    assertion: request.upstreamAssertion ?? '',
    identity: request.auth === null ? null : { userId: request.auth.sub, username: request.auth.username, roles: request.auth.roles },
    client: request.client === null ? null : { clientId: request.client.client_id, scopes: request.client.scope.split(' ') }
  })

  for (const [upstream, mounts] of table.mountPoints()) {
    // One pool per upstream, shared by its mount points and both paths (reply-from destroys it on close).
    const pool = deadlinePool(upstreams[upstream], { connections: 128, timeoutMs: upstreamTimeoutMs })
    const upstreamHost = new URL(upstreams[upstream]).host
    const onError = onUpstreamError(upstream)
    const direct = {
      pool,
      requestHeaders: (request: AnyRequest) => {
        const headers = headersFor(request, request.headers)
        headers.host = upstreamHost // as reply-from sends it
        return headers
      },
      responseHeaders: clientResponseHeaders,
      onError
    }
    // GETs without a body take the direct path (src/proxy/direct-forward.ts), except to the users
    // service, whose answers may carry user changes (user-changes.ts reads them on reply-from's path).
    const directGets = upstream !== 'users'
    for (const prefix of mounts) {
      const proxyOptions: FastifyHttpProxyOptions = {
        upstream: upstreams[upstream],
        prefix,
        rewritePrefix: prefix,
        preHandler: guard,
        handler: (request, reply, dest, options) => {
          if (directGets && isDirectRequest(request)) {
            const query = request.url.indexOf('?')
            forwardDirect(request, reply, query === -1 ? dest : dest + request.url.slice(query), direct)
            return
          }
          // reply-from would refuse a segment such as `...` (see dotted-segments.ts).
          reply.from(escapeDottedSegments(dest), options)
        },
        // Keep-alive pool to the upstream; a request with no answer in time (waiting for a
        // connection included) is a 504.
        undici: pool,
        disableRequestLogging: true,
        replyOptions: {
          // Never retry: a non-idempotent request must reach the upstream at most once.
          retryDelay: () => null,
          onError,
          // Only the users service's answers may carry user changes.
          ...(upstream === 'users' ? { onResponse: changes.onUsersAnswer } : {}),
          rewriteHeaders: clientResponseHeaders,
          rewriteRequestHeaders: headersFor
        },
        config: { upstream }
      }
      await fastify.register(proxy, proxyOptions)
    }
  }
}
