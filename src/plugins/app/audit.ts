/**
 * Decorates the audit trail (`audit`), the replica's shared live feed reader (`auditFeed`) and the
 * list of lockouts and IP blocks (`blocks`), docs/audit-and-dashboard.md.
 */
import fp from 'fastify-plugin'
import { Cluster } from 'ioredis'
import { AuditLog } from '../../audit/audit-log.js'
import { AuditFeed } from '../../audit/audit-feed.js'
import { StreamSlots } from '../../audit/stream-slots.js'
import { BlockList } from '../../limits/block-list.js'
import type { RedisClient } from '../../lib/redis-client.js'

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditLog
    auditFeed: AuditFeed
    blocks: BlockList
    /** Open event streams per admin session, counted across replicas. */
    streamSlots: StreamSlots
  }
}

export interface AuditPluginOptions {
  /** Heartbeat comment interval of the SSE feed (tests shorten it). */
  heartbeatMs?: number
}

/** Open event streams one admin session may have at once. */
export const STREAMS_PER_SESSION = 5

const FEED_BLOCK_MS = 5000

/** The feed's own connection: a blocking read must not hold up the shared client's commands. */
function feedConnection (redis: RedisClient): RedisClient {
  // The shared client's 500 ms command timeout would cut every blocking read short.
  const commandTimeout = FEED_BLOCK_MS + 2000
  if (redis instanceof Cluster) {
    return redis.duplicate(undefined, { lazyConnect: true, redisOptions: { ...redis.options.redisOptions, commandTimeout } })
  }
  return redis.duplicate({ lazyConnect: true, commandTimeout })
}

export default fp<AuditPluginOptions>(async (fastify, opts) => {
  const { audit, limits } = fastify.config
  let lastError = ''
  const log = new AuditLog(fastify.redis, audit.retentionDays, (err) => {
    // Once per distinct error: an outage must not flood the logs from every request.
    const message = (err as Error).message
    if (message !== lastError) fastify.log.warn({ err: { message } }, 'audit event not stored')
    lastError = message
  }, audit.maxEvents)
  log.startFlushing()
  const feed = new AuditFeed(() => feedConnection(fastify.redis), { blockMs: FEED_BLOCK_MS, heartbeatMs: opts.heartbeatMs ?? 15_000 })
  fastify.decorate('audit', log)
  fastify.decorate('auditFeed', feed)
  fastify.decorate('streamSlots', new StreamSlots(fastify.redis, STREAMS_PER_SESSION))
  fastify.decorate('blocks', new BlockList(fastify.redis, audit.stuffingUsernames, audit.ipBlockSeconds, limits.lockoutSeconds))
  fastify.addHook('preClose', async () => {
    log.close()
    await feed.close()
  })
}, { name: 'audit', dependencies: ['config', 'redis-store'] })
