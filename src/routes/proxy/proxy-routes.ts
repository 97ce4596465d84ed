/**
 * Default-deny proxying (contract section 5): one catch-all route behind the gateway's own routes.
 * Each request is matched on its normalized path (see src/proxy/normalize-path.ts, applied before
 * routing) against the current route table, authenticated and authorized by its route, then
 * forwarded with the headers of src/proxy/upstream-headers.ts: GETs without a body on the direct
 * path (src/proxy/direct-forward.ts), everything else through @fastify/reply-from, bodies streamed.
 * Upstream failures become 502 `upstream_unavailable` / 504 `upstream_timeout`; nothing is ever
 * retried.
 *
 * The table comes from a routes file (src/proxy/routes-file.ts) and may be replaced at run time
 * (src/proxy/routes-reload.ts): a request keeps the route it was admitted with until it is done.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import replyFrom, { type FastifyReplyFromHooks } from '@fastify/reply-from'
import { Counter } from 'prom-client'
import { gatewayError } from '../../errors.js'
import { sendProblem } from '../../plugins/app/error-handler.js'
import type { AnyReply, AnyRequest } from '../../lib/request-types.js'
import { AssertionCache } from '../../proxy/assertion-cache.js'
import { proxyDecision } from '../../proxy/decide.js'
import { identityAssertion } from '../../proxy/identity-assertion.js'
import { splitUrl, wasRefusedPath } from '../../proxy/normalize-path.js'
import { DEFAULT_BODY_LIMIT, RouteTable, type ProxyRoute, type UpstreamName } from '../../proxy/route-table.js'
import { DEMO_ROUTES_FILE, readRoutesFileSync, type RoutesSpec, type UpstreamSpec } from '../../proxy/routes-file.js'
import { upstreamHeaders } from '../../proxy/upstream-headers.js'
import { clientResponseHeaders } from '../../proxy/response-headers.js'
import { escapeDottedSegments } from '../../proxy/dotted-segments.js'
import { DEADLINE_CODE } from '../../proxy/upstream-pool.js'
import { UpstreamPools } from '../../proxy/upstream-pools.js'
import { forwardDirect, isDirectRequest, type DirectForward } from '../../proxy/direct-forward.js'
import { pinClientIp } from '../../lib/security-events.js'
import { userChanges } from '../../proxy/user-changes.js'
import { watchRoutesFile, routesReloader, type RoutesControl } from '../../proxy/routes-reload.js'
import { handshakeOf, withoutTicket } from '../../live/ws-upgrade.js'

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
    /** The route a proxied request was admitted with (it keeps it across a reload). */
    proxyRoute: CompiledRoute | null
    /** The metrics label of a proxied request: its route's mount point, as `/mount` or `/mount/*`. */
    proxyMetricsLabel: string | null
  }
  interface FastifyInstance {
    /** The proxy's route table: current state and reload (src/proxy/routes-reload.ts). */
    routesControl: RoutesControl
    /** The route table in use now (forward authentication decides on the same one). */
    proxyRouteTable: () => RouteTable
  }
}

/** Everything a request needs of its upstream, built once per table. */
interface CompiledUpstream {
  name: UpstreamName
  origin: string
  /** The url's path, prefixed to every forwarded path ('' for none). */
  basePath: string
  direct: DirectForward
  /** GETs take the direct path, except to the users service (see below). */
  directGets: boolean
  replyOptions: FastifyReplyFromHooks & { timeout: number, getUpstream: () => string }
}

export interface CompiledRoute {
  route: ProxyRoute
  upstream: CompiledUpstream
  bodyLimit: number
  mount: string
  mountBelow: string
}

/** A route table with everything resolved: what one reload swaps in. */
export interface LiveTable {
  spec: RoutesSpec
  table: RouteTable
  compiled: Map<ProxyRoute, CompiledRoute>
}

/** The upstreams of a hand-made route table (tests): the demo ones at USERS_URL and ORDERS_URL. */
function specOf (routes: readonly ProxyRoute[], upstreams: Record<string, string>): RoutesSpec {
  return {
    file: '(built in)',
    sha256: '',
    upstreams: new Map(Object.entries(upstreams).map(([name, url]) => [name, { name, url, timeoutMs: undefined }])),
    routes: [...routes]
  }
}

export default fp(async function proxyRoutes (fastify: FastifyInstance, opts: { routes?: readonly ProxyRoute[] }): Promise<void> {
  const { upstreams: demoUpstreams, upstreamTimeoutMs } = fastify.config
  const routesConfig = fastify.config.routes
  const assertions = new AssertionCache()
  const decide = proxyDecision(fastify)
  const changes = userChanges(fastify)
  const pools = new UpstreamPools(upstreamTimeoutMs, undefined, fastify.config.upstreamCa)
  fastify.addHook('onClose', async () => { await pools.destroy() })
  fastify.decorateRequest('upstreamAssertion', null)
  fastify.decorateRequest('proxiedBodyLimit', null)
  fastify.decorateRequest('proxyRoute', null)
  fastify.decorateRequest('proxyMetricsLabel', null)

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

  /** Builds the upstreams and routes of a table (synchronous: a reload swaps it in at once). */
  function compile (spec: RoutesSpec): LiveTable {
    const table = new RouteTable(spec.routes)
    const upstreams = new Map<UpstreamName, CompiledUpstream>()
    const upstreamOf = (u: UpstreamSpec): CompiledUpstream => {
      const existing = upstreams.get(u.name)
      if (existing !== undefined) return existing
      const url = new URL(u.url)
      // Strings, not URL getters: these are read on every request.
      const origin = url.origin
      const host = url.host
      const timeoutMs = u.timeoutMs ?? upstreamTimeoutMs
      const pool = pools.acquire(origin)
      const onError = onUpstreamError(u.name)
      const compiled: CompiledUpstream = {
        name: u.name,
        origin,
        basePath: url.pathname === '/' ? '' : url.pathname,
        direct: {
          pool,
          timeoutMs,
          requestHeaders: (request: AnyRequest) => {
            const headers = headersFor(request, request.headers)
            headers.host = host // as reply-from sends it
            return headers
          },
          responseHeaders: clientResponseHeaders,
          onError
        },
        // GETs without a body take the direct path, except to the users service, whose answers may
        // carry user changes (user-changes.ts reads them on reply-from's path).
        directGets: u.name !== 'users',
        replyOptions: {
          getUpstream: () => origin,
          timeout: timeoutMs,
          // Never retry: a non-idempotent request must reach the upstream at most once.
          retryDelay: () => null,
          onError,
          // Only the users service's answers may carry user changes.
          ...(u.name === 'users' ? { onResponse: changes.onUsersAnswer } : {}),
          rewriteHeaders: clientResponseHeaders,
          rewriteRequestHeaders: headersFor
        }
      }
      upstreams.set(u.name, compiled)
      return compiled
    }
    const mounts = table.mountPoints()
    const compiled = new Map<ProxyRoute, CompiledRoute>()
    for (const route of table.routes) {
      const upstream = spec.upstreams.get(route.upstream)
      if (upstream === undefined) throw new Error(`route table: ${route.path} names the unknown upstream ${route.upstream}`)
      const mount = mounts.get(route) ?? route.path
      compiled.set(route, {
        route,
        upstream: upstreamOf(upstream),
        bodyLimit: route.bodyLimit ?? DEFAULT_BODY_LIMIT,
        mount,
        mountBelow: mount + '/*'
      })
    }
    return { spec, table, compiled }
  }

  const initial = opts.routes !== undefined
    ? specOf(opts.routes, demoUpstreams)
    : readRoutesFileSync(routesConfig.file ?? DEMO_ROUTES_FILE, { vars: routesConfig.urlVars })
  let current = compile(initial)
  pools.keepOnly(new Set([...current.compiled.values()].map((c) => c.upstream.origin)))

  const reloads = new Counter({
    name: 'gateway_routes_reloads_total',
    help: 'Reloads of the routes file, by result (success: applied; failure: invalid, the table was kept)',
    labelNames: ['result'] as const,
    registers: [fastify.metrics.registry]
  })
  const control = routesReloader(fastify, {
    file: routesConfig.file,
    vars: routesConfig.urlVars,
    current: () => current.spec,
    swap: (spec) => {
      const next = compile(spec)
      current = next
      pools.keepOnly(new Set([...next.compiled.values()].map((c) => c.upstream.origin)))
    },
    counted: (result) => reloads.inc({ result }),
    pools: () => pools.size
  })
  fastify.decorate('routesControl', control)
  fastify.decorate('proxyRouteTable', () => current.table)
  if (routesConfig.file !== undefined) {
    const watcher = watchRoutesFile(routesConfig.file, fastify.log, () => { void control.reload('file') })
    fastify.addHook('onClose', async () => { watcher.close() })
  }

  /** The decision (src/proxy/decide.ts) on the request's table; the body limit; then the identity assertion. */
  async function guard (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // The table of this request: a reload meanwhile does not change its route.
    const live = current
    const path = splitUrl(request.url).path
    const matched = live.table.match(path)
    const compiled = matched === undefined ? undefined : live.compiled.get(matched)
    request.proxyMetricsLabel = compiled === undefined ? 'unmatched' : path === compiled.mount ? compiled.mount : compiled.mountBelow
    // A WebSocket handshake (src/live/ws-upgrade.ts): its ticket, Origin and route flag first; it
    // holds no upstream pool connection, and LIVE_CONNECTIONS_PER_USER bounds it instead.
    const handshake = handshakeOf(request) !== undefined
    if (handshake) await fastify.live.checkHandshake(request, live.table)
    const route = await decide(request, reply, {
      table: live.table,
      method: request.method,
      path,
      unrouted: wasRefusedPath(request.raw) ? 'invalid_request' : 'not_found',
      holdsUpstream: !handshake
    })
    request.proxyRoute = live.compiled.get(route)!
    const bodyLimit = request.proxyRoute.bodyLimit
    // The users service's answers may carry user changes, whose events are written after the
    // body was proxied: the client IP is taken while the socket is still there.
    if (route.upstream === 'users') pinClientIp(request)
    if (route.passwordCheck === true && request.auth !== null && request.client === null) await changes.reserveAttempt(request)
    const length = Number(request.headers['content-length'] ?? 0)
    if (length > bodyLimit) {
      // The unread body would otherwise be drained on a kept-alive connection: close it instead.
      reply.header('connection', 'close')
      throw gatewayError('payload_too_large')
    }
    if (request.headers['transfer-encoding'] !== undefined && request.body !== undefined && request.body !== null) {
      const limiter = new BodyLimit(bodyLimit)
      ;(request.body as NodeJS.ReadableStream).pipe(limiter)
      request.proxiedBodyLimit = limiter
      request.body = limiter
    }
    // A public route forwards no identity: no assertion either.
    if (route.public === true) return
    // Signed (or reused) here because reply-from builds the upstream headers synchronously.
    request.upstreamAssertion = await identityAssertion(fastify, assertions, route.upstream, request)
  }

  /** Forwards an admitted request on the route it was admitted with. */
  function forward (request: FastifyRequest, reply: FastifyReply): void {
    const upstream = request.proxyRoute!.upstream
    const url = request.url
    const query = url.indexOf('?')
    const path = query === -1 ? url : url.slice(0, query)
    const dest = upstream.basePath === '' ? path : upstream.basePath + path
    if (handshakeOf(request) !== undefined) {
      fastify.live.forwardHandshake(request, reply, request.proxyRoute!.route, {
        origin: upstream.origin,
        path: withoutTicket(query === -1 ? dest : dest + url.slice(query)),
        headers: headersFor(request, request.headers),
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

  await fastify.register(async (scope) => {
    // Keep-alive pools to the upstreams (src/proxy/upstream-pools.ts); a request with no answer in
    // time (waiting for a connection included) is a 504.
    await scope.register(replyFrom, { undici: pools.dispatcher, disableRequestLogging: true })
    // Bodies are streamed to the upstream as they arrive, never parsed or held whole.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
    // Synchronous unless a password-check reservation is left (no promise per proxied request).
    scope.addHook('onResponse', (request, _reply, done) => {
      const pending = changes.releaseUnsettled(request)
      if (pending === null) done()
      else pending.then(() => done(), done)
    })
    // Behind every route of the gateway's own (static routes win); OPTIONS belongs to CORS.
    scope.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      url: '/*',
      schema: { hide: true },
      preHandler: guard,
      handler: forward
    })
  })
}, { name: 'proxy-routes', dependencies: ['metrics', 'live-connections'] })
