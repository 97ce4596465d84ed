/**
 * A route table made ready for requests: each upstream gets its connection pool (src/proxy/
 * upstream-pools.ts), its deadline, its error handler and the options of both proxy paths once,
 * and each route its upstream, body limit and metrics labels. Compiling is synchronous, so a reload
 * (src/proxy/routes-reload.ts) swaps the whole result in at once, and a request keeps the compiled
 * route it was admitted with.
 */
import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import { forwardedHeaders, forwardedHeadersWithHost } from './forwarded-headers.js'
import type { DirectForward } from './direct-forward.js'
import { clientResponseHeaders } from './response-headers.js'
import { DEFAULT_BODY_LIMIT, RouteTable, type ProxyRoute, type UpstreamName } from './route-table.js'
import type { RoutesSpec, UpstreamSpec } from './routes-file.js'
import type { UpstreamErrorHandler } from './upstream-errors.js'
import type { UpstreamPools } from './upstream-pools.js'
import type { UserChanges } from './user-changes.js'

/** Everything a request needs of its upstream, built once per table. */
export interface CompiledUpstream {
  name: UpstreamName
  origin: string
  /** The url's path, prefixed to every forwarded path ('' for none). */
  basePath: string
  direct: DirectForward
  /** GETs without a body take the direct path (PROXY_DIRECT_GET, and never to the users service). */
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

export interface CompileOptions {
  pools: UpstreamPools
  /** UPSTREAM_TIMEOUT_MS: the timeout of an upstream that names none. */
  timeoutMs: number
  /** PROXY_DIRECT_GET: false sends every request through @fastify/reply-from. */
  directGet: boolean
  errorHandler: (upstream: UpstreamName) => UpstreamErrorHandler
  /** reply-from's `onResponse` for the users service (src/proxy/user-changes.ts). */
  onUsersAnswer: UserChanges['onUsersAnswer']
}

/** The upstreams of a hand-made route table (tests): the demo ones at USERS_URL and ORDERS_URL. */
export function specOf (routes: readonly ProxyRoute[], upstreams: Record<string, string>): RoutesSpec {
  return {
    file: '(built in)',
    sha256: '',
    upstreams: new Map(Object.entries(upstreams).map(([name, url]) => [name, { name, url, timeoutMs: undefined }])),
    routes: [...routes]
  }
}

/** The origins a table uses (their pools are kept, the others retired). */
export function originsOf (live: LiveTable): Set<string> {
  return new Set([...live.compiled.values()].map((c) => c.upstream.origin))
}

/** Builds the upstreams and routes of a table. */
export function routeCompiler (opts: CompileOptions): (spec: RoutesSpec) => LiveTable {
  return function compile (spec) {
    const table = new RouteTable(spec.routes)
    const upstreams = new Map<UpstreamName, CompiledUpstream>()
    const upstreamOf = (u: UpstreamSpec): CompiledUpstream => {
      const existing = upstreams.get(u.name)
      if (existing !== undefined) return existing
      const url = new URL(u.url)
      // Strings, not URL getters: these are read on every request.
      const origin = url.origin
      const timeoutMs = u.timeoutMs ?? opts.timeoutMs
      const onError = opts.errorHandler(u.name)
      const compiled: CompiledUpstream = {
        name: u.name,
        origin,
        basePath: url.pathname === '/' ? '' : url.pathname,
        direct: {
          pool: opts.pools.acquire(origin),
          timeoutMs,
          requestHeaders: forwardedHeadersWithHost(url.host),
          responseHeaders: clientResponseHeaders,
          onError
        },
        // Not to the users service, whose answers may carry user changes (user-changes.ts reads
        // them on reply-from's path).
        directGets: opts.directGet && u.name !== 'users',
        replyOptions: {
          getUpstream: () => origin,
          timeout: timeoutMs,
          // Never retry: a non-idempotent request must reach the upstream at most once.
          retryDelay: () => null,
          onError,
          // Only the users service's answers may carry user changes.
          ...(u.name === 'users' ? { onResponse: opts.onUsersAnswer } : {}),
          rewriteHeaders: clientResponseHeaders,
          rewriteRequestHeaders: forwardedHeaders
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
}
