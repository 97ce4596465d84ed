/**
 * Live connections across replicas and through a Redis outage (docs/live-connections.md): a
 * revocation on one replica ends the sockets and streams of another, over the live channel; while
 * Redis is away open connections stay; once it is back, those whose session was lost meanwhile end,
 * and nothing is left registered.
 */
import t from 'tap'
import { build } from '../helper.js'
import { openSse } from '../helpers/sse.js'
import { mustOpen, openWs } from '../helpers/ws-client.js'
import { sample } from '../helpers/metrics.js'
import { waitFor } from '../helpers/redis-server.js'

t.test('a socket on replica 1 ends when the logout happens on replica 0', async (t) => {
  const a = await build(t)
  const b = await build(t, { redis: a.redis, keyRing: a.keyRing })
  await waitFor(() => a.gateway.live.channelUp() && b.gateway.live.channelUp(), 'both replicas subscribed')
  const mine = await a.login('alice')
  const other = await a.login('alice')
  const sock = mustOpen(await openWs(b.url, '/api/orders/ws', { token: mine.access }))
  const stays = mustOpen(await openWs(b.url, '/api/orders/ws', { token: other.access }))
  const stream = await openSse(b.url, '/api/orders/events', mine.access)
  await stream.next((m) => m.id === '1', 'a first event')
  t.equal((await a.request('POST', '/auth/logout', { token: mine.access })).status, 204, 'logged out on replica 0')
  t.same(await sock.waitClosed(5000), { code: 1008, reason: 'session_revoked' }, 'the socket on replica 1 closed')
  await waitFor(() => stream.ended, 'the stream on replica 1 to end', 5000)
  t.pass('the stream on replica 1 ended')
  stays.ws.send('here')
  await stays.next((m) => m === 'here', 'the other session still echoes')
  t.equal(stays.closed, null, 'the other session\'s socket stays')
  stays.ws.close()
  await stays.waitClosed()
})

t.test('a Redis outage while sockets are open: they stay; sessions lost meanwhile end once it is back', async (t) => {
  const h = await build(t)
  const alice = await h.login('alice')
  const sock = mustOpen(await openWs(h.url, '/api/orders/ws', { token: alice.access }))
  const stream = await openSse(h.url, '/api/orders/events', alice.access)
  await waitFor(() => h.gateway.live.channelUp(), 'the live channel')
  await h.redis.kill()
  await waitFor(() => !h.gateway.live.channelUp(), 'the gateway to see the channel lost')
  // A sweep while Redis is away judges nothing: the connections stay.
  await h.gateway.live.sweep()
  sock.ws.send('during the outage')
  await sock.next((m) => m === 'during the outage', 'an echo during the outage')
  t.equal(sock.closed, null, 'the socket stays open while Redis is away')
  const seen = stream.messages.length
  await waitFor(() => stream.messages.length > seen, 'an event during the outage')
  t.notOk(stream.ended, 'the stream stays open while Redis is away')
  // Back, empty: every session was lost meanwhile.
  await h.redis.restart()
  t.same(await sock.waitClosed(15_000), { code: 1008, reason: 'session_revoked' }, 'ended once Redis is back')
  await waitFor(() => stream.ended, 'the stream to end', 15_000)
  await waitFor(
    async () => sample((await h.request('GET', '/metrics')).text, 'gateway_live_connections', 'kind="websocket"') === 0,
    'no socket registered'
  )
  t.equal(h.gateway.live.registry.count('websocket') + h.gateway.live.registry.count('stream'), 0, 'nothing is left registered')
})
