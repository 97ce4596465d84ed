/** Decorates the session store (sessions, refresh rotation and revocation in Redis). */
import fp from 'fastify-plugin'
import { SessionStore, type LocalState } from '../../sessions/session-store.js'
import { SessionCache } from '../../sessions/session-cache.js'
import { InvalidationTracker } from '../../sessions/invalidation-tracker.js'
import { BatchedWindowCounter } from '../../limits/batched-window-counter.js'
import { LIMIT_WINDOW_MS } from '../../limits/limit-headers.js'
import { redisClientOptions } from './redis-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionStore
    /** The session cache and the batched counters (SESSION_CACHE=on), shared with the machine-client checks; null when off. */
    localState: Omit<LocalState, 'apiLimit'> | null
  }
}

export default fp(async (fastify) => {
  const { jwt, limits, redis } = fastify.config
  let local: LocalState | undefined
  if (fastify.config.sessionCache) {
    // Client-side caching is set up against one Redis; on Redis Cluster every request checks Redis
    // (docs/session-cache.md), and only the counters are batched.
    const cache = redis.clusterNodes.length > 0
      ? undefined
      : new SessionCache((onInvalidate) => new InvalidationTracker(
        redis.url,
        redisClientOptions(redis.commandTimeoutMs),
        onInvalidate,
        fastify.log
      ))
    const counter = new BatchedWindowCounter(
      fastify.redis,
      { windowMs: LIMIT_WINDOW_MS, syncMs: fastify.config.limitSyncMs, log: fastify.log }
    )
    local = { cache, counter, apiLimit: limits.apiPerUser }
    cache?.tracker.start()
    fastify.addHook('onClose', async () => {
      await counter.flush().catch(() => { /* Redis away: the hits are lost with the replica */ })
      await cache?.tracker.close()
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
