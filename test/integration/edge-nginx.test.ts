/**
 * The shipped nginx configuration (deploy/edge/nginx/auth-gateway.conf) run for real in front of
 * the gateway (forward authentication) and the stub services: the client gets the gateway's own
 * answers, spoofed identity headers never reach an upstream, and another style's headers do not
 * move the decision.
 */
import t from 'tap'
import { build, httpRequest, type HttpResult } from '../helper.js'
import { startEcho } from '../helpers/echo-upstream.js'
import { startNginx } from '../helpers/edge-proxies.js'
import { waitFor } from '../helpers/redis-server.js'
import { redisUp } from '../helpers/metrics.js'

t.test('nginx in front, the gateway as its auth service', async (t) => {
  const h = await build(t, { env: { FORWARD_AUTH_PROXIES: '127.0.0.1=nginx', TRUST_PROXY: '127.0.0.1', API_USER_LIMIT: '40' } })
  const nginx = await startNginx(t, { gateway: h.url, users: h.config.upstreams.users, orders: h.config.upstreams.orders })
  const via = (method: string, path: string, opts?: Parameters<typeof httpRequest>[3]): Promise<HttpResult> =>
    httpRequest(nginx.url, method, path, opts)

  const login = await via('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(login.status, 200, 'login through nginx (the gateway\'s own endpoint)')
  const alice = login.body as { access: string, user: { id: string } }
  const admin = (await via('POST', '/auth/login', { body: { username: 'admin', password: 'admin-password' } })).body as { access: string }

  t.test('GET and POST with bodies reach the stub services with the caller\'s identity', async (t) => {
    const me = await via('GET', '/api/users/me', { token: alice.access })
    t.equal(me.status, 200, nginx.output())
    t.equal(me.body.username, 'alice')
    const created = await via('POST', '/api/orders', { token: alice.access, body: { item: 'book', quantity: 2 } })
    t.equal(created.status, 201, created.text)
    t.equal(created.body.item, 'book', 'the body arrived')
    const list = await via('GET', '/api/orders', { token: alice.access })
    t.equal(list.status, 200)
    t.ok((list.body.orders ?? list.body).some((o: { item: string }) => o.item === 'book'))
  })

  t.test('the admin-only route', async (t) => {
    const refused = await via('GET', '/api/users', { token: alice.access })
    t.equal(refused.status, 403)
    t.equal(refused.body.code, 'forbidden')
    t.match(refused.headers.get('content-type'), /^application\/problem\+json/)
    t.equal((await via('GET', '/api/users', { token: admin.access })).status, 200)
  })

  t.test('refusals: the gateway\'s own status, code and headers', async (t) => {
    const none = await via('GET', '/api/orders')
    t.equal(none.status, 401)
    t.equal(none.body.code, 'token_missing')
    t.equal(none.headers.get('www-authenticate'), 'Bearer realm="auth-gateway"', 'once, as the gateway sent it')
    const bad = await via('GET', '/api/orders', { token: 'x.y.z' })
    t.equal(bad.status, 401)
    t.equal(bad.body.code, 'token_invalid')
    t.match(bad.headers.get('www-authenticate'), /error="invalid_token"/)
    const unrouted = await via('GET', '/api/orders%2fx', { token: alice.access })
    t.equal(unrouted.status, 400, 'a path the gateway refuses: 400 as through its own proxy')
    t.equal(unrouted.body.code, 'invalid_request')
    const wrongMethod = await via('DELETE', '/api/users/me', { token: alice.access })
    t.equal(wrongMethod.status, 403, 'a method the route does not list')
    const check = await via('GET', '/auth/check',
      { token: alice.access, headers: { 'x-original-uri': '/api/orders', 'x-original-method': 'GET' } })
    t.equal(check.status, 404, 'the check endpoint is not reachable through nginx')
  })

  t.test('a revoked token is refused at the next request', async (t) => {
    const bob = (await via('POST', '/auth/login', { body: { username: 'bob', password: 'bob-password' } })).body as { access: string }
    t.equal((await via('GET', '/api/orders', { token: bob.access })).status, 200)
    t.equal((await via('POST', '/auth/logout', { token: bob.access })).status, 204)
    const res = await via('GET', '/api/orders', { token: bob.access })
    t.equal(res.status, 401)
    t.equal(res.body.code, 'token_revoked')
  })

  t.test('429 with Retry-After, as through the gateway\'s own proxy', async (t) => {
    // bob again (his earlier session is gone): a user whose count starts here.
    const bob2 = (await via('POST', '/auth/login', { body: { username: 'bob', password: 'bob-password' } })).body as { access: string }
    let res = await via('GET', '/api/orders', { token: bob2.access })
    for (let i = 0; i < 60 && res.status === 200; i++) res = await via('GET', '/api/orders', { token: bob2.access })
    t.equal(res.status, 429)
    t.equal(res.body.code, 'rate_limited')
    t.match(res.headers.get('retry-after'), /^\d+$/)
    t.match(res.headers.get('content-type'), /^application\/problem\+json/)
    const own = await h.request('GET', '/api/orders', { token: bob2.access })
    t.equal(own.status, 429, 'the own proxy agrees')
    t.equal(own.body.code, res.body.code)
  })

  t.test('spoofed identity headers and another style\'s headers', async (t) => {
    const echo = await startEcho(t)
    const spy = await startNginx(t, { gateway: h.url, users: echo.url, orders: echo.url })
    const spoofed = {
      'x-user-id': '9999', 'x-user-name': 'mallory', 'x-user-roles': 'admin', 'x-user-email': 'm@example.com', X_User_Id: '9999',
      'x-client-id': 'evil', 'x-client-scopes': 'orders:write', 'x-gateway-assertion': 'forged', 'x-gateway-extra': '1',
      // Another style's headers naming the admin-only path: the decision stays on the real one.
      'x-forwarded-uri': '/api/users', 'x-forwarded-method': 'GET', 'x-original-url': 'http://x/api/users'
    }
    const res = await httpRequest(spy.url, 'GET', '/api/orders/42', { token: alice.access, headers: spoofed })
    t.equal(res.status, 200, spy.output())
    const seen = echo.requests.at(-1)!
    t.equal(seen.url, '/api/orders/42')
    t.equal(seen.headers['x-user-id'], alice.user.id, 'the gateway\'s identity, not the client\'s')
    t.equal(seen.headers['x-user-name'], 'alice')
    t.equal(seen.headers['x-user-roles'], 'user')
    t.type(seen.headers['x-gateway-assertion'], 'string')
    t.not(seen.headers['x-gateway-assertion'], 'forged')
    for (const name of ['x-user-email', 'x_user_id', 'x-client-id', 'x-client-scopes', 'x-gateway-extra', 'authorization', 'cookie']) {
      t.equal(seen.headers[name], undefined, `${name} does not reach the upstream`)
    }
    // The other way round: nginx's own X-Original-URI wins over a client's X-Forwarded-Uri naming an allowed path.
    const admins = await httpRequest(spy.url, 'GET', '/api/users',
      { token: alice.access, headers: { 'x-forwarded-uri': '/api/orders', 'x-forwarded-method': 'GET', 'x-original-uri': '/api/orders' } })
    t.equal(admins.status, 403, 'the admin-only path nginx forwards is the one decided')
    t.equal(echo.requests.filter((r) => r.url === '/api/users').length, 0, 'nothing reached the upstream')
  })

  t.test('Redis away: 503 through nginx', async (t) => {
    await h.redis.kill()
    t.teardown(async () => {
      await h.redis.restart()
      await waitFor(() => redisUp(h.url), 'the gateway back on Redis (readiness ignores Redis)')
    })
    const res = await via('GET', '/api/orders', { token: alice.access })
    t.equal(res.status, 503)
    t.equal(res.body.code, 'store_unavailable')
    t.match(res.headers.get('retry-after') ?? '', /^(\d+)?$/)
  })
})
