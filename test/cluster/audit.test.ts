/**
 * The audit trail, the shared SSE reader and the blocks on a real three-master Redis Cluster (one
 * gateway, to keep it short; the integration suites cover the behaviour in depth on one Redis).
 */
import t from 'tap'
import { useCluster } from './use-cluster.js'
import { build } from '../helper.js'
import { loginCall } from '../helpers/abuse.js'
import { openSse } from '../helpers/sse.js'
import { waitFor } from '../helpers/redis-server.js'

useCluster()

t.test('events, the live feed and an IP block on Redis Cluster', async (t) => {
  const h = await build(t, { env: { STUFFING_USERNAMES: '3', UPSTREAM_TIMEOUT_MS: '60000' } })
  t.ok(h.config.redis.clusterNodes.length > 0, 'the gateway talks to a cluster')
  const admin = await h.login('admin')
  const feed = await openSse(h.url, '/admin/events/stream', admin.access)
  t.teardown(() => feed.close())
  t.equal(feed.status, 200)
  await feed.next((m) => m.comment === 'connected', 'feed open')
  await waitFor(() => h.gateway.auditFeed.listeners === 1, 'listening')

  for (const name of ['x1', 'x2', 'x3']) t.equal((await loginCall(h.url, name, 'pw', { from: '127.0.0.2' })).status, 401)
  await feed.next((m) => m.data?.includes('"ip_blocked"') === true, 'ip_blocked on the feed')
  const blocked = await loginCall(h.url, 'alice', 'alice-password', { from: '127.0.0.2' })
  t.equal(blocked.status, 429)
  t.equal(blocked.body.code, 'ip_blocked')

  const page = await h.request('GET', '/admin/events?event=login_failed&limit=2', { token: admin.access })
  t.equal(page.status, 200)
  t.equal(page.body.events.length, 2)
  const rest = await h.request('GET', `/admin/events?event=login_failed&cursor=${page.body.next_cursor}`, { token: admin.access })
  t.equal(rest.body.events.length, 1, 'the cursor pages on')
  const counts = await h.request('GET', '/admin/events/counts', { token: admin.access })
  t.equal(counts.body.hour.login_failed, 3)

  const { blocks } = (await h.request('GET', '/admin/blocks', { token: admin.access })).body
  const ipBlock = blocks.find((b: any) => b.kind === 'ip')
  t.match(ipBlock, { ip: '127.0.0.2', failures: 3 })
  t.equal((await h.request('DELETE', `/admin/blocks/${ipBlock.id}`, { token: admin.access })).status, 204)
  t.equal((await loginCall(h.url, 'alice', 'alice-password', { from: '127.0.0.2' })).status, 200, 'lifted')
})
