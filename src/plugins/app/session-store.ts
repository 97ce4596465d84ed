/** Decorates the session store (sessions, refresh rotation and revocation in Redis). */
import fp from 'fastify-plugin'
import { SessionStore, type LocalState } from '../../sessions/session-store.js'
import { SessionCache } from '../../sessions/session-cache.js'
import { InvalidationTracker } from '../../sessions/invalidation-tracker.js'
import { ClusterInvalidationTracker } from '../../sessions/cluster-invalidation-tracker.js'
import { BatchedWindowCounter } from '../../limits/batched-window-counter.js'
import { LIMIT_WINDOW_MS } from '../../limits/limit-headers.js'
import { createRedisClient, redisClientOptions } from './redis-store.js'
import { Cluster } from 'ioredis'
import { Counter, Gauge } from 'prom-client'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionStore
    /** The session cache and the batched counters (SESSION_CACHE=on), shared with the machine-client checks; null when off. */
    localState: Omit<LocalState, 'apiLimit'> | null
  }
}

/** The session cache's counts and tracking state at /metrics (docs/observability.md). */
function cacheMetrics (fastify: FastifyInstance, cache: SessionCache): void {
  const registers = [fastify.metrics.registry]
  new Counter({
    name: 'gateway_session_cache_requests_total',
    help: 'Session and machine-token checks with the session cache on: answered from it (hit) or sent to Redis (miss)',
    labelNames: ['result'] as const,
    registers,
    collect () {
      this.reset()
      this.inc({ result: 'hit' }, cache.stats.hits)
      this.inc({ result: 'miss' }, cache.stats.misses)
    }
  })
  new Counter({
    name: 'gateway_session_cache_flushes_total',
    help: 'Times the whole session cache was dropped (invalidation connection lost, Redis flushed, cluster topology changed)',
    registers,
    collect () { this.reset(); this.inc(cache.stats.flushes) }
  })
  new Gauge({
    name: 'gateway_session_cache_entries',
    help: 'Checks held in the session cache (placeholders of reads in flight included)',
    registers,
    collect () { this.set(cache.size) }
  })
  new Gauge({
    name: 'gateway_session_cache_tracking',
    help: 'Whether the session cache is trusted now (1: invalidations tracked on every Redis node) or every check goes to Redis (0)',
    registers,
    collect () { this.set(cache.tracker.generation() === null ? 0 : 1) }
  })
  new Gauge({
    name: 'gateway_session_cache_tracked_nodes',
    help: 'Redis nodes whose invalidations this replica receives (one Redis: 1 while tracked)',
    registers,
    collect () { this.set(cache.tracker.trackedNodes) }
  })
}

export default fp(async (fastify) => {
  const { jwt, limits, redis } = fastify.config
  let local: LocalState | undefined
  if (fastify.config.sessionCache) {
    // Client-side caching against one Redis, or against every node of a Redis Cluster.
    const main = fastify.redis
    const cache = new SessionCache((onInvalidate) => {
      if (!(main instanceof Cluster)) {
        return new InvalidationTracker(redis.url, redisClientOptions(redis.commandTimeoutMs), onInvalidate, fastify.log)
      }
      // The slot map read again every few seconds: new nodes and moved slots are seen without a MOVED.
      const data = createRedisClient(redis, { connectionName: 'gw-session-cache' }, { slotsRefreshInterval: 5000 })
      if (!(data instanceof Cluster)) throw new Error('REDIS_CLUSTER_NODES set but no cluster client')
      return new ClusterInvalidationTracker(main, data, redisClientOptions(redis.commandTimeoutMs), onInvalidate, fastify.log)
    })
    if (fastify.hasDecorator('metrics')) cacheMetrics(fastify, cache)
    const counter = new BatchedWindowCounter(
      fastify.redis,
      { windowMs: LIMIT_WINDOW_MS, syncMs: fastify.config.limitSyncMs, log: fastify.log }
    )
    local = { cache, counter, apiLimit: limits.apiPerUser }
    cache.tracker.start()
    fastify.addHook('onClose', async () => {
      await counter.flush().catch(() => { /* Redis away: the hits are lost with the replica */ })
      await cache.tracker.close()
    })
  }
  fastify.decorate('localState', local === undefined ? null : { cache: local.cache, counter: local.counter })
  fastify.decorate('sessions', new SessionStore(fastify.redis, {
    refreshTtl: jwt.refreshTtl,
    reuseGraceSeconds: jwt.reuseGrace,
    refreshLimit: { max: limits.refreshPerSession, windowMs: LIMIT_WINDOW_MS },
    userStateTtl: fastify.config.userStateTtl,
    legacyUntilMs: fastify.config.legacy?.untilMs ?? null,
    local
  }))
}, { name: 'session-store', dependencies: ['config', 'redis-store'] })
