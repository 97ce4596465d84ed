/**
 * The replica's shared feed reader against real Redis: one reader fans out to every listener,
 * heartbeats reach them, a listener that leaves is forgotten, `ready()` fails fast when Redis is
 * away and a running feed ends its listeners when Redis goes.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { AuditFeed } from '../../src/audit/audit-feed.js'
import { AuditLog, AUDIT_STREAM } from '../../src/audit/audit-log.js'
import { startRedis, waitFor } from '../helpers/redis-server.js'

const options = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 3000, connectTimeout: 500,
  retryStrategy: () => 200 }

t.test('one reader, many listeners, heartbeats, and an outage ends them', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const writer = new Redis(redis.url)
  writer.on('error', () => { /* the outage below is on purpose */ })
  t.teardown(() => writer.disconnect())
  const log = new AuditLog(writer, 7)
  const connections: Redis[] = []
  const feed = new AuditFeed(() => { const c = new Redis(redis.url, options); connections.push(c); return c },
    { blockMs: 1000, heartbeatMs: 50 })
  t.teardown(() => feed.close())
  await feed.ready()

  const got: Array<{ events: string[], beats: number, ended: boolean }> = []
  const unsubscribe: Array<() => void> = []
  for (let i = 0; i < 3; i++) {
    const box = { events: [] as string[], beats: 0, ended: false }
    got.push(box)
    unsubscribe.push(feed.subscribe({ event: (e) => box.events.push(e.event), heartbeat: () => { box.beats++ },
      end: () => { box.ended = true } }))
  }
  t.equal(feed.listeners, 3)
  await waitFor(() => got.every((g) => g.beats >= 2), 'heartbeats to every listener')
  // The reader starts after the newest entry: an older one is not replayed.
  await log.append('before_or_after', { ip: '127.0.0.1', request_id: 'r0' })
  await log.append('first', { ip: '127.0.0.1', request_id: 'r1' })
  await log.append('second', { ip: '127.0.0.1', request_id: 'r2' })
  await waitFor(() => got.every((g) => g.events.includes('second')), 'both events to every listener')
  t.same(got.map((g) => g.events.filter((e) => e === 'first' || e === 'second')), Array(3).fill(['first', 'second']),
    'every listener got both, in order')
  t.equal(connections.length, 1, 'one connection reads for all listeners')

  unsubscribe[0]!()
  t.equal(feed.listeners, 2, 'a listener that leaves is forgotten')
  await log.append('third', { ip: '127.0.0.1', request_id: 'r3' })
  await waitFor(() => got[1]!.events.includes('third'), 'the others still get events')
  t.notOk(got[0]!.events.includes('third'), 'the one that left gets nothing')

  await redis.kill()
  await waitFor(() => got[1]!.ended && got[2]!.ended, 'the listeners to be ended when Redis goes')
  t.equal(feed.listeners, 0)
  // A rejection at all is the point: ready() must fail rather than wait for Redis to come back.
  await t.rejects(feed.ready(), 'ready() fails while Redis is away (it does not wait)')
  t.equal(await writer.xlen(AUDIT_STREAM).catch(() => -1), -1, 'Redis really is away')
})
