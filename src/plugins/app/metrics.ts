/**
 * Prometheus metrics at /metrics (prom-client, one registry per gateway instance): requests by
 * route and status, latency histograms, security events, Redis errors, latency and health, upstream
 * errors, Node's default metrics and the live heap.
 */
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks'
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface GatewayMetrics {
  registry: Registry
  securityEvents: Counter<'event'>
  upstreamErrors: Counter<'upstream' | 'code'>
  redisErrors: Counter
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatewayMetrics
  }
}

/** V8 heap spaces of the young generation: they fill again at once after any GC. */
const YOUNG_SPACES = new Set(['new_space', 'new_large_object_space'])

/**
 * `gateway_nodejs_heap_after_gc_bytes`: the V8 heap in use (young generation left out) as the last
 * full (mark-compact) GC left it, i.e. the live heap. The heap in use swings with garbage V8 has
 * not collected yet; this one is flat unless something is retained for good (a leak, an unbounded
 * cache). Until the first full GC: the heap in use at start-up.
 */
function liveHeapGauge (fastify: FastifyInstance, registry: Registry): void {
  const gauge = new Gauge({
    name: 'gateway_nodejs_heap_after_gc_bytes',
    help: 'V8 heap in use after the last full GC, young generation excluded (the live heap), in bytes',
    registers: [registry]
  })
  const record = (): void => {
    let used = 0
    for (const space of getHeapSpaceStatistics()) if (!YOUNG_SPACES.has(space.space_name)) used += space.space_used_size
    gauge.set(used)
  }
  record()
  const observer = new PerformanceObserver((list) => {
    // A GC entry's detail (Node >= 16): { kind, flags }.
    const full = list.getEntries().some((e) => (e as {
      detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR)
    if (full) record()
  })
  observer.observe({ entryTypes: ['gc'] })
  fastify.addHook('onClose', async () => { observer.disconnect() })
}

export default fp(async (fastify) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'gateway_' })
  liveHeapGauge(fastify, registry)
  // V8's heap limit (--max-old-space-size, bin/auth-gateway): the live heap's ceiling, for the alert.
  new Gauge({
    name: 'gateway_nodejs_heap_size_limit_bytes',
    help: 'The V8 heap size limit of the process, in bytes',
    registers: [registry]
  }).set(getHeapStatistics().heap_size_limit)

  const requests = new Counter({
    name: 'gateway_http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry]
  })
  const duration = new Histogram({
    name: 'gateway_http_request_duration_seconds',
    help: 'Time to answer, by route pattern and method',
    labelNames: ['route', 'method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry]
  })
  const metrics: GatewayMetrics = {
    registry,
    securityEvents: new Counter({ name: 'gateway_security_events_total', help: 'Security events, by event (docs/observability.md)',
      labelNames: ['event'] as const, registers: [registry] }),
    upstreamErrors: new Counter({ name: 'gateway_upstream_errors_total',
      help: 'Proxied requests that failed at the upstream, by upstream and code', labelNames: ['upstream', 'code'] as const,
        registers: [registry] }),
    redisErrors: new Counter({ name: 'gateway_redis_errors_total',
      help: 'Redis connection errors and requests refused with store_unavailable', registers: [registry] })
  }
  // Redis is sampled at scrape time: one PING per scrape, shared by its latency and up gauges.
  let ping: Promise<number | undefined> | undefined
  const pingOnce = (): Promise<number | undefined> => {
    ping ??= (async () => {
      const start = process.hrtime.bigint()
      try {
        await fastify.redis.ping()
        return Number(process.hrtime.bigint() - start) / 1e9
      } catch {
        return undefined
      } finally {
        ping = undefined
      }
    })()
    return ping
  }
  new Gauge({
    name: 'gateway_redis_ping_seconds',
    help: 'Latency of a Redis PING at scrape time (-1 when Redis does not answer)',
    registers: [registry],
    async collect () { this.set(await pingOnce() ?? -1) }
  })
  // What alerts on a Redis outage: readiness deliberately ignores Redis (docs/operations.md, "Readiness").
  new Gauge({
    name: 'gateway_redis_up',
    help: 'Whether Redis answered a PING at scrape time (1) or not (0)',
    registers: [registry],
    async collect () { this.set(await pingOnce() === undefined ? 0 : 1) }
  })
  fastify.decorate('metrics', metrics)
  fastify.redis.on('error', () => metrics.redisErrors.inc())

  fastify.addHook('onResponse', (request, reply, done) => {
    // Proxied requests by their route's mount point (the proxy is one catch-all route).
    const route = request.proxyMetricsLabel ?? request.routeOptions.url ?? 'unmatched'
    requests.inc({ route, method: request.method, status: reply.statusCode })
    duration.observe({ route, method: request.method }, reply.elapsedTime / 1000)
    done()
  })

  fastify.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus metrics (text format)' } }, async (_request, reply) => {
    reply.header('content-type', registry.contentType).header('cache-control', 'no-store')
    return registry.metrics()
  })
}, { name: 'metrics', dependencies: ['redis-store'] })
