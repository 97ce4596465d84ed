/**
 * The stack as an operator runs it: the BUILT gateway and stub services (dist/, from `npm run
 * build`, which `make test` runs first) as separate processes, a real redis-server, free ports,
 * configured by environment only. Readiness is polled, never waited for with fixed sleeps.
 */
import t from 'tap'
import { httpRequest, type HttpResult, type RequestOptions } from '../helper.js'
import { freePort, startRedis, waitFor } from '../helpers/redis-server.js'
import { answers, ensureBuilt, start, stop, waitUntilAnswering, type Proc } from '../helpers/processes.js'

t.test('end to end from the built output', async (t) => {
  ensureBuilt()

  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const [gatewayPort, usersPort, ordersPort] = [await freePort(), await freePort(), await freePort()]
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`
  const usersUrl = `http://127.0.0.1:${usersPort}`
  const ordersUrl = `http://127.0.0.1:${ordersPort}`
  const stubEnv = { HOST: '127.0.0.1', GATEWAY_JWKS_URL: `${gatewayUrl}/.well-known/jwks.json`, LOG_LEVEL: 'warn' }

  const procs: Proc[] = []
  // Stopped in reverse order: the gateway first, then the services it calls.
  t.teardown(async () => {
    for (const p of [...procs].reverse()) await stop(p)
  })
  procs.push(start('users', 'dist/services/users/server.js', { ...stubEnv, USERS_PORT: String(usersPort) }))
  procs.push(start('orders', 'dist/services/orders/server.js', { ...stubEnv, ORDERS_PORT: String(ordersPort) }))
  procs.push(start('gateway', 'dist/src/server.js', {
    PORT: String(gatewayPort),
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    USERS_URL: usersUrl,
    ORDERS_URL: ordersUrl,
    LOG_LEVEL: 'warn',
    COOKIE_SECURE: 'false'
  }))

  for (const [proc, url] of [[procs[0]!, usersUrl], [procs[1]!, ordersUrl], [procs[2]!, gatewayUrl]] as const) {
    await waitUntilAnswering(proc, `${url}/healthz`)
  }
  await waitFor(() => answers(`${gatewayUrl}/readyz`), 'gateway /readyz (Redis)', 15_000)

  const req = (method: string, path: string, opts?: RequestOptions): Promise<HttpResult> => httpRequest(gatewayUrl, method, path, opts)

  const login = await req('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(login.status, 200, 'alice logs in')
  t.same(login.body.user, { id: '1001', username: 'alice', roles: ['user'] })
  const { access, refresh } = login.body as { access: string, refresh: string }

  const me = await req('GET', '/api/users/me', { token: access, headers: { 'x-request-id': 'e2e-me-1' } })
  t.equal(me.status, 200, 'GET /api/users/me')
  t.same(me.body, { id: '1001', username: 'alice', roles: ['user'], active: true })
  t.equal(me.headers.get('x-request-id'), 'e2e-me-1', 'the request id is echoed')

  const users = await req('GET', '/api/users', { token: access })
  t.equal(users.status, 403, 'alice may not list users')
  t.equal(users.body.code, 'forbidden')

  const created = await req('POST', '/api/orders', { token: access, body: { item: 'book', quantity: 2 } })
  t.equal(created.status, 201, 'POST /api/orders')
  t.equal(created.body.item, 'book')
  t.equal(created.body.user_id, '1001')
  const orderId = created.body.id as string
  t.type(orderId, 'string')

  const list = await req('GET', '/api/orders', { token: access })
  t.equal(list.status, 200)
  t.same(list.body.orders.map((o: { id: string }) => o.id), [orderId], 'the list has the new order')

  const own = await req('GET', `/api/orders/${orderId}`, { token: access })
  t.equal(own.status, 200)
  t.equal(own.body.id, orderId)

  const bobLogin = await req('POST', '/auth/login', { body: { username: 'bob', password: 'bob-password' } })
  t.equal(bobLogin.status, 200)
  const bobsView = await req('GET', `/api/orders/${orderId}`, { token: bobLogin.body.access })
  t.equal(bobsView.status, 404, 'bob does not see alice\'s order')
  const bobsList = await req('GET', '/api/orders', { token: bobLogin.body.access })
  t.same(bobsList.body, { orders: [] })

  const refreshed = await req('POST', '/auth/refresh', { body: { refresh } })
  t.equal(refreshed.status, 200, 'refresh')
  t.type(refreshed.body.access, 'string')
  t.not(refreshed.body.refresh, refresh, 'the refresh token rotates')
  const newAccess = refreshed.body.access as string
  t.equal((await req('GET', '/api/orders', { token: newAccess })).status, 200, 'the new access token works')

  const logout = await req('POST', '/auth/logout', { token: newAccess })
  t.equal(logout.status, 204, 'logout')
  const old = await req('GET', '/api/orders', { token: access })
  t.equal(old.status, 401, 'the old access token is refused after logout')
  t.equal((await req('GET', '/api/orders', { token: newAccess })).status, 401, 'and so is the newer one')
  t.equal((await req('POST', '/auth/refresh', { body: { refresh: refreshed.body.refresh } })).status, 401, 'and the refresh token')

  const direct = await httpRequest(usersUrl, 'GET', '/api/users/me', { headers: { 'x-user-id': '1001' } })
  t.equal(direct.status, 401, 'the users stub refuses a direct call without an assertion')
  t.equal((await httpRequest(ordersUrl, 'GET', '/api/orders')).status, 401, 'so does the orders stub')
  t.equal((await httpRequest(usersUrl, 'GET', '/api/users/me', { token: bobLogin.body.access })).status, 401,
    'an access token is no assertion')

  const unknown = await req('GET', '/api/nothing')
  t.equal(unknown.status, 404)
  t.match(unknown.headers.get('content-type'), /^application\/problem\+json/)

  // Graceful shutdown: SIGTERM ends every process with status 0.
  for (const p of [...procs].reverse()) {
    await stop(p)
    t.equal(p.child.exitCode, 0, `${p.name} exits 0 on SIGTERM${p.child.exitCode === 0 ? '' : `: ${p.output()}`}`)
  }
})
