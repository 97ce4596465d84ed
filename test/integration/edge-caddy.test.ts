/**
 * The shipped Caddyfile (deploy/edge/caddy/Caddyfile) run for real in front of the gateway
 * (forward authentication) and the stub services.
 */
import t from 'tap'
import { build, httpRequest, type HttpResult } from '../helper.js'
import { startEcho } from '../helpers/echo-upstream.js'
import { startCaddy } from '../helpers/edge-proxies.js'
import { waitFor } from '../helpers/redis-server.js'
import { redisUp } from '../helpers/metrics.js'

t.test('Caddy in front, the gateway as its auth service', async (t) => {
  const h = await build(t, { env: { FORWARD_AUTH_PROXIES: '127.0.0.1=caddy', TRUST_PROXY: '127.0.0.1', API_USER_LIMIT: '40' } })
  const caddy = await startCaddy(t, { gateway: h.url, users: h.config.upstreams.users, orders: h.config.upstreams.orders })
  const via = (method: string, path: string, opts?: Parameters<typeof httpRequest>[3]): Promise<HttpResult> =>
    httpRequest(caddy.url, method, path, opts)

  const login = await via('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(login.status, 200, 'login through Caddy')
  const alice = login.body as { access: string, user: { id: string } }
  const admin = (await via('POST', '/auth/login', { body: { username: 'admin', password: 'admin-password' } })).body as { access: string }

  t.test('GET and POST with bodies, the admin-only route', async (t) => {
    const me = await via('GET', '/api/users/me', { token: alice.access })
    t.equal(me.status, 200, caddy.output())
    t.equal(me.body.username, 'alice')
    const created = await via('POST', '/api/orders', { token: alice.access, body: { item: 'lamp', quantity: 1 } })
    t.equal(created.status, 201, created.text)
    t.equal(created.body.item, 'lamp')
    t.equal((await via('GET', '/api/users', { token: alice.access })).status, 403)
    t.equal((await via('GET', '/api/users', { token: admin.access })).status, 200)
  })

  t.test('refusals: the gateway\'s own answers, passed on by Caddy', async (t) => {
    const none = await via('GET', '/api/orders')
    t.equal(none.status, 401)
    t.equal(none.body.code, 'token_missing')
    t.equal(none.headers.get('www-authenticate'), 'Bearer realm="auth-gateway"')
    const revokedUser = (await via('POST', '/auth/login', { body: { username: 'bob', password: 'bob-password' } })).body as {
      access: string }
    t.equal((await via('GET', '/api/orders', { token: revokedUser.access })).status, 200)
    t.equal((await via('POST', '/auth/logout', { token: revokedUser.access })).status, 204)
    const revoked = await via('GET', '/api/orders', { token: revokedUser.access })
    t.equal(revoked.status, 401, 'revoked: refused at the next request')
    t.equal(revoked.body.code, 'token_revoked')
    t.equal((await via('GET', '/auth/check', { token: alice.access })).status, 404, 'the check endpoint is not reachable through Caddy')

    const bob = (await via('POST', '/auth/login', { body: { username: 'bob', password: 'bob-password' } })).body as { access: string }
    let res = await via('GET', '/api/orders', { token: bob.access })
    for (let i = 0; i < 60 && res.status === 200; i++) res = await via('GET', '/api/orders', { token: bob.access })
    t.equal(res.status, 429)
    t.equal(res.body.code, 'rate_limited')
    t.match(res.headers.get('retry-after'), /^\d+$/)
  })

  t.test('spoofed identity headers and another style\'s headers', async (t) => {
    const echo = await startEcho(t)
    const spy = await startCaddy(t, { gateway: h.url, users: echo.url, orders: echo.url })
    const spoofed = {
      'x-user-id': '9999', 'x-user-name': 'mallory', 'x-user-roles': 'admin', 'x-user-email': 'm@example.com',
      'x-client-id': 'evil', 'x-client-scopes': 'orders:write', 'x-gateway-assertion': 'forged', 'x-gateway-extra': '1',
      'x-original-uri': '/api/users', 'x-original-method': 'GET', 'x-original-url': 'http://x/api/users'
    }
    const res = await httpRequest(spy.url, 'POST', '/api/orders?page=2', { token: alice.access, headers: spoofed, body: { item: 'x' } })
    t.equal(res.status, 200, spy.output())
    const seen = echo.requests.at(-1)!
    t.equal(seen.url, '/api/orders?page=2')
    t.equal(seen.body, '{"item":"x"}', 'the body arrived')
    t.equal(seen.headers['x-user-id'], alice.user.id)
    t.equal(seen.headers['x-user-name'], 'alice')
    t.equal(seen.headers['x-user-roles'], 'user')
    t.not(seen.headers['x-gateway-assertion'], 'forged')
    for (const name of ['x-user-email', 'x-client-id', 'x-client-scopes', 'x-gateway-extra', 'authorization', 'cookie']) {
      t.notOk(seen.headers[name], `${name} does not reach the upstream (${String(seen.headers[name])})`)
    }
    const admins = await httpRequest(spy.url, 'GET', '/api/users',
      { token: alice.access, headers: { 'x-original-uri': '/api/orders', 'x-original-method': 'GET',
        'x-original-url': 'http://x/api/orders' } })
    t.equal(admins.status, 403, 'the admin-only path Caddy forwards is the one decided')
    t.equal(echo.requests.filter((r) => r.url === '/api/users').length, 0, 'nothing reached the upstream')
  })

  t.test('Redis away: 503 through Caddy', async (t) => {
    await h.redis.kill()
    t.teardown(async () => {
      await h.redis.restart()
      await waitFor(() => redisUp(h.url), 'the gateway back on Redis (readiness ignores Redis)')
    })
    const res = await via('GET', '/api/orders', { token: alice.access })
    t.equal(res.status, 503)
    t.equal(res.body.code, 'store_unavailable')
  })
})
