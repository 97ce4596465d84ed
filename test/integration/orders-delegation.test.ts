/**
 * The orders stub calling the users service on the user's behalf (token exchange): with client
 * credentials it exchanges the assertion of the user's request and reads GET /api/users/me through
 * the gateway, and the order records that profile's username; the exchange is in the audit trail
 * under the user's request id. Without credentials the stub works as before.
 */
import t from 'tap'
import { createLocalJWKSet } from 'jose'
import { build } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { waitFor } from '../helpers/redis-server.js'
import { registerClient } from '../helpers/machine-clients.js'
import { buildOrdersService } from '../../services/orders/app.js'

t.test('orders reads the caller\'s profile through the gateway', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000' } })
  const admin = await h.login('admin')
  const client = await registerClient(h.url, admin.access, ['token-exchange'], 'orders service')

  let gatewayUrl = ''
  const orders = await buildOrdersService({
    keys: createLocalJWKSet(h.keyRing.publicJwks),
    issuer: 'auth-gateway',
    delegation: { gatewayUrl: () => gatewayUrl, clientId: client.client_id, clientSecret: client.client_secret }
  })
  const ordersUrl = await orders.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => orders.close())
  const g = await build(t, { redis: h.redis, keyRing: h.keyRing,
    env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000', ORDERS_URL: ordersUrl } })
  gatewayUrl = g.url

  const alice = await g.login('alice')
  const created = await g.request('POST', '/api/orders',
    { token: alice.access, body: { item: 'book' }, headers: { 'x-request-id': 'order-of-alice-1' } })
  t.equal(created.status, 201)
  t.equal(created.body.username, 'alice', 'the order records the profile\'s username, read on alice\'s behalf')
  t.equal(created.body.user_id, alice.user.id)

  let events: Array<Record<string, unknown>> = []
  await waitFor(async () => {
    events = (await g.request('GET', '/admin/events?event=token_exchanged', { token: admin.access })).body.events
    return events.some((e) => e.request_id === 'order-of-alice-1')
  }, 'token_exchanged event of the order request')
  t.match(events.find((e) => e.request_id === 'order-of-alice-1'),
    { user_id: alice.user.id, client_id: client.client_id, audience: 'users' },
      'the service-to-service call is in the audit trail under the user\'s request id')

  t.equal((await g.request('POST', '/auth/logout', { token: alice.access })).status, 204)
  const bob = await g.login('bob')
  const other = await g.request('POST', '/api/orders', { token: bob.access, body: { item: 'pen' } })
  t.equal(other.body.username, 'bob', 'each user\'s own profile')

  t.test('unchanged without client credentials', async (t) => {
    const plain = await h.request('POST', '/api/orders', { token: (await h.login('alice')).access, body: { item: 'book' } })
    t.equal(plain.status, 201)
    t.notOk('username' in plain.body, 'no profile read')
  })
})
