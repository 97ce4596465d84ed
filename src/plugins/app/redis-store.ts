/**
 * The Redis client (one Redis, or Redis Cluster when REDIS_CLUSTER_NODES is set).
 * Commands fail fast instead of queueing while Redis is away (docs/operations.md): no offline
 * queue, bounded command and connect timeouts, and reconnection at most a second apart.
 */
import fp from 'fastify-plugin'
import { Redis, Cluster, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { RedisClient } from '../../lib/redis-client.js'
import type { Config } from '../../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisClient
  }
}

/** Per-command timeout (REDIS_COMMAND_TIMEOUT_MS, 500 ms by default): a request needing Redis answers 503 well within a second. */
export function redisClientOptions (commandTimeoutMs: number): RedisOptions {
  return {
    // Commands issued in the same tick by concurrent requests share one write: still one round trip
    // per request, far fewer syscalls on both sides.
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
    lazyConnect: true
  }
}

export function createRedisClient (redis: Config['redis'], extra: RedisOptions = {}, clusterExtra: ClusterOptions = {}): RedisClient {
  if (redis.clusterNodes.length > 0) {
    return new Cluster(redis.clusterNodes, {
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      redisOptions: { ...redisClientOptions(redis.commandTimeoutMs), ...extra },
      clusterRetryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
      lazyConnect: true,
      ...clusterExtra
    })
  }
  return new Redis(redis.url, { ...redisClientOptions(redis.commandTimeoutMs), ...extra })
}

/** Resolves once the client is ready, or after `ms` (start-up goes on; /readyz tells). */
function readyWithin (client: RedisClient, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => { clearTimeout(timer); client.off('ready', done); resolve() }
    const timer = setTimeout(done, ms)
    client.once('ready', done)
  })
}

export default fp(async (fastify) => {
  const client = createRedisClient(fastify.config.redis)
  // Connection errors are expected during an outage; they are logged, never thrown at start-up.
  let lastError = ''
  client.on('error', (err: Error) => {
    if (err.message !== lastError) fastify.log.warn({ err: { message: err.message } }, 'redis error')
    lastError = err.message
  })
  client.on('ready', () => { lastError = '' })
  client.connect().catch(() => { /* retried by retryStrategy */ })
  await readyWithin(client, 2000)
  fastify.decorate<RedisClient>('redis', client)
  fastify.addHook('onClose', async () => {
    await client.quit().catch(() => client.disconnect())
  })
}, { name: 'redis-store', dependencies: ['config'] })
