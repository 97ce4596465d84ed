/**
 * Default-deny proxying: one catch-all route behind the gateway's own routes. Each request is
 * admitted by src/proxy/proxy-guard.ts (route on the normalized path, the decision of
 * src/proxy/decide.ts, body limit, identity assertion) and forwarded by src/proxy/proxy-forward.ts
 * (direct GETs or @fastify/reply-from, bodies streamed; docs/proxy-paths.md). Upstream failures
 * become 502 `upstream_unavailable` / 504 `upstream_timeout` (src/proxy/upstream-errors.ts);
 * nothing is ever retried.
 *
 * The table comes from a routes file (src/proxy/routes-file.ts), is compiled with its pools by
 * src/proxy/compiled-routes.ts, and may be replaced at run time (src/proxy/routes-reload.ts): a
 * request keeps the route it was admitted with until it is done.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import replyFrom from '@fastify/reply-from'
import { Counter } from 'prom-client'
import { originsOf, routeCompiler, specOf } from '../../proxy/compiled-routes.js'
import { proxyDecision } from '../../proxy/decide.js'
import { proxyAssertions } from '../../proxy/proxy-assertion.js'
import { forward } from '../../proxy/proxy-forward.js'
import { proxyGuard } from '../../proxy/proxy-guard.js'
import type { ProxyRoute, RouteTable } from '../../proxy/route-table.js'
import { DEMO_ROUTES_FILE, readRoutesFileSync } from '../../proxy/routes-file.js'
import { watchRoutesFile, routesReloader, type RoutesControl } from '../../proxy/routes-reload.js'
import { upstreamErrorHandler } from '../../proxy/upstream-errors.js'
import { UpstreamPools } from '../../proxy/upstream-pools.js'
import { userChanges } from '../../proxy/user-changes.js'
import { stepUpWithoutFactors } from '../../mfa/step-up.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The proxy's route table: current state and reload (src/proxy/routes-reload.ts). */
    routesControl: RoutesControl
    /** The route table in use now (forward authentication decides on the same one). */
    proxyRouteTable: () => RouteTable
  }
}

export default fp(async function proxyRoutes (fastify: FastifyInstance, opts: { routes?: readonly ProxyRoute[] }): Promise<void> {
  const { upstreams: demoUpstreams, upstreamTimeoutMs } = fastify.config
  const routesConfig = fastify.config.routes
  const changes = userChanges(fastify)
  const pools = new UpstreamPools(upstreamTimeoutMs, undefined, fastify.config.upstreamCa)
  fastify.addHook('onClose', async () => { await pools.destroy() })
  fastify.decorateRequest('upstreamAssertion', null)
  fastify.decorateRequest('proxiedBodyLimit', null)
  fastify.decorateRequest('proxyRoute', null)
  fastify.decorateRequest('proxyMetricsLabel', null)

  const compile = routeCompiler({
    pools,
    timeoutMs: upstreamTimeoutMs,
    directGet: fastify.config.proxyDirectGet,
    errorHandler: (upstream) => upstreamErrorHandler(fastify, upstream),
    onUsersAnswer: changes.onUsersAnswer
  })
  const initial = opts.routes !== undefined
    ? specOf(opts.routes, demoUpstreams)
    : readRoutesFileSync(routesConfig.file ?? DEMO_ROUTES_FILE, { vars: routesConfig.urlVars })
  let current = compile(initial)
  pools.keepOnly(originsOf(current))

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
      pools.keepOnly(originsOf(next))
    },
    counted: (result) => reloads.inc({ result }),
    pools: () => pools.size,
    // As at start-up (src/app.ts): a step-up route while second factors are off is refused.
    refuse: (spec) => stepUpWithoutFactors(spec.routes, fastify.config)
  })
  fastify.decorate('routesControl', control)
  fastify.decorate('proxyRouteTable', () => current.table)
  if (routesConfig.file !== undefined) {
    const watcher = watchRoutesFile(routesConfig.file, fastify.log, () => { void control.reload('file') })
    fastify.addHook('onClose', async () => { watcher.close() })
  }

  const guard = proxyGuard({
    current: () => current,
    decide: proxyDecision(fastify),
    changes,
    assert: proxyAssertions(fastify)
  })

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
