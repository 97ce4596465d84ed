/**
 * Default-deny proxying (docs/proxy.md): the route table decides who reaches which upstream,
 * everything else is 404 without touching an upstream, and no path trick reaches an upstream path
 * other than the one that was authorized. Echo upstreams show exactly which paths arrive.
 */
import t from 'tap'
import { decodeJwt } from 'jose'
import { build } from '../helper.js'
import { ROUTE_TABLE } from '../../src/proxy/route-table.js'
import { startEcho, type EchoUpstream } from '../helpers/echo-upstream.js'
import { rawPathRequest, rawSocket } from '../helpers/raw-http.js'

/** Limits high enough that routing tests are never rate limited (the limits of docs/abuse-protection.md have their own tests). */
const RELAXED: Record<string, string> = { LOGIN_IP_LIMIT: '10000', API_USER_LIMIT: '10000', PUBLIC_IP_LIMIT: '10000',
  VERIFY_IP_LIMIT: '10000' }

/** Paths of the requests an echo received, query strings included. */
const urls = (echo: EchoUpstream): string[] => echo.requests.map((r) => r.url)

/** True when a forwarded path names users, encoded or not. */
function namesUsers (url: string): boolean {
  let decoded = url
  try { decoded = decodeURIComponent(url) } catch { /* keep it raw */ }
  return /users/i.test(decoded) || /users/i.test(url)
}

t.test('route table against the real stubs', async (t) => {
  const h = await build(t, { env: RELAXED })
  const alice = await h.login('alice')
  const admin = await h.login('admin')

  t.test('any authenticated user reaches /api/orders', async (t) => {
    const res = await h.request('GET', '/api/orders', { token: alice.access })
    t.equal(res.status, 200)
    t.same(res.body, { orders: [] })
  })

  t.test('/api/users/me gives the caller her own profile', async (t) => {
    const res = await h.request('GET', '/api/users/me', { token: alice.access })
    t.equal(res.status, 200)
    t.same(res.body, { id: '1001', username: 'alice', roles: ['user'], active: true })
  })

  t.test('/api/users and below need the admin role', async (t) => {
    for (const path of ['/api/users', '/api/users/1002']) {
      const res = await h.request('GET', path, { token: alice.access })
      t.equal(res.status, 403, path)
      t.equal(res.body.code, 'forbidden')
      t.match(res.headers.get('content-type'), /^application\/problem\+json/)
    }
    const list = await h.request('GET', '/api/users', { token: admin.access })
    t.equal(list.status, 200)
    t.ok(Array.isArray(list.body.users))
    t.ok(list.body.users.some((u: { username: string }) => u.username === 'alice'))
    const one = await h.request('GET', '/api/users/1002', { token: admin.access })
    t.equal(one.status, 200)
    t.equal(one.body.username, 'bob')
  })

  t.test('no token on an authenticated route: 401 token_missing', async (t) => {
    for (const path of ['/api/orders', '/api/users/me', '/api/users']) {
      const res = await h.request('GET', path)
      t.equal(res.status, 401, path)
      t.equal(res.body.code, 'token_missing')
      t.match(res.headers.get('www-authenticate'), /^Bearer/)
    }
  })

  t.test('a garbage token: 401 token_invalid', async (t) => {
    const res = await h.request('GET', '/api/orders', { token: 'not.a.token' })
    t.equal(res.status, 401)
    t.equal(res.body.code, 'token_invalid')
  })

  t.test('a revoked session is refused on the very next proxied request', async (t) => {
    const bob = await h.login('bob')
    t.equal((await h.request('GET', '/api/orders', { token: bob.access })).status, 200)
    const out = await h.request('POST', '/auth/logout', { token: bob.access })
    t.equal(out.status, 204)
    const res = await h.request('GET', '/api/orders', { token: bob.access })
    t.equal(res.status, 401)
    t.equal(res.body.code, 'token_revoked')
    t.match(res.headers.get('www-authenticate'), /error="invalid_token"/)
  })
})

t.test('default deny and path tricks, with echo upstreams', async (t) => {
  const usersEcho = await startEcho(t)
  const ordersEcho = await startEcho(t)
  // Logins need the real users stub (credential check): they go through a first gateway; a second
  // one with the same keys and the same Redis, whose upstreams are the echoes, takes the tokens.
  const auth = await build(t, { env: RELAXED })
  const h = await build(t, { env: { ...RELAXED, USERS_URL: usersEcho.url, ORDERS_URL: ordersEcho.url }, keyRing: auth.keyRing,
    redis: auth.redis })
  const alice = await auth.login('alice')
  const admin = await auth.login('admin')
  t.beforeEach(() => { usersEcho.reset(); ordersEcho.reset() })

  t.test('control: the echo upstreams are reached through the table', async (t) => {
    const res = await h.request('GET', '/api/orders/42?x=1', { token: alice.access })
    t.equal(res.status, 200)
    t.equal(res.body.url, '/api/orders/42?x=1')
    t.same(urls(ordersEcho), ['/api/orders/42?x=1'])
    const me = await h.request('GET', '/api/users/me', { token: alice.access })
    t.equal(me.status, 200)
    t.same(urls(usersEcho), ['/api/users/me'])
  })

  t.test('unknown paths: 404 not_found and no upstream contacted', async (t) => {
    for (const path of ['/api/nothing', '/', '/apiorders', '/api/usersX', '/api/ordersX', '/api', '/api/', '/users', '/orders',
      '/api/users-me', '/internal/credentials/check']) {
      for (const token of [undefined, alice.access, admin.access]) {
        const res = await rawPathRequest(h.url, 'GET', path, token === undefined ? {} : { token })
        t.equal(res.status, 404, `${path} ${token === undefined ? 'anonymous' : 'with token'}`)
        t.equal(res.body?.code, 'not_found')
        t.match(res.headers['content-type'], /^application\/problem\+json/)
      }
    }
    const post = await rawPathRequest(h.url, 'POST', '/api/nothing', { token: alice.access, body: '{"a":1}' })
    t.equal(post.status, 404)
    t.equal(usersEcho.count, 0, 'the users upstream received nothing')
    t.equal(ordersEcho.count, 0, 'the orders upstream received nothing')
  })

  t.test('a role-restricted route refused before the upstream', async (t) => {
    const res = await h.request('GET', '/api/users', { token: alice.access })
    t.equal(res.status, 403)
    t.equal(res.body.code, 'forbidden')
    t.equal(usersEcho.count, 0)
  })

  // Each of these must not take alice anywhere below /api/users except her own /api/users/me.
  const TRICKS = [
    '/api/orders/../users',
    '/api/orders/./../users',
    '/api/orders/%2e%2e/users',
    '/api/orders/%2E%2E/users',
    '/api/orders/.%2e/users',
    '/api/orders/%252e%252e/users',
    '/api/orders/%25%32%65%25%32%65/users',
    '/api/orders/..%2fusers',
    '/api/orders/..%2Fusers',
    '/api/orders/%2e%2e%2fusers',
    '/api/orders%2f..%2fusers',
    '//api//users',
    '/api//users',
    '/api/./users',
    '/API/users',
    '/api/USERS',
    '/Api/Users/1002',
    '/api/users;x=1',
    '/api/orders;/../users',
    '/api/orders/..;/users',
    '/api/users%00',
    '/api/users%00/me',
    '/api/orders/%00',
    '/api/orders/%00/../../users',
    '/api/orders/..\\users',
    '/api/orders/..%5cusers',
    '/api/orders/..%5Cusers',
    '/api/users/me/..',
    '/api/users/me/../1002',
    '/api/users/me/%2e%2e/1002',
    '/api/users/me/%2e%2e',
    '/api/users/me/../../users',
    '/api/users/me%2f..%2f1002',
    '/api/users/me/..%2f1002',
    '/api/users/%6de/../1002',
    '/api/%75sers',
    '/api/%75sers/1002',
    '/api/orders/%ZZ/../../users',
    '/api/orders/../../../api/users',
    '/../api/users',
    '/api/orders/%c0%ae%c0%ae/users',
    '/api/orders%3F/../users',
    '/api/orders%23/../users',
    '/api/orders#/../users',
    '/api/orders/\u00ff/../../users'
  ]

  for (const path of TRICKS) {
    t.test(`path trick ${JSON.stringify(path)} does not reach a users route alice may not use`, async (t) => {
      const res = await rawPathRequest(h.url, 'GET', path, { token: alice.access })
      t.ok([400, 403, 404].includes(res.status), `status ${res.status} is 400, 403 or 404`)
      if (res.status >= 400) {
        t.match(res.headers['content-type'], /^application\/problem\+json/)
        t.ok(['invalid_request', 'forbidden', 'not_found'].includes(res.body?.code), `code ${String(res.body?.code)}`)
      }
      t.same(urls(usersEcho), [], 'the users upstream received nothing')
      t.notOk(urls(ordersEcho).some(namesUsers),
        `no path naming users reached the orders upstream: ${JSON.stringify(urls(ordersEcho))}`)
    })
  }

  t.test('request targets that are not origin-form: 400, nothing forwarded', async (t) => {
    for (const target of ['http://127.0.0.1/api/users', 'http://127.0.0.1/api/orders/../users', '*', 'api/users', '../api/users']) {
      const res = await rawSocket(h.url,
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice.access}\r\nConnection: close\r\n\r\n`)
      t.equal(res.status, 400, target)
    }
    t.same(urls(usersEcho), [])
    t.same(urls(ordersEcho), [])
  })

  t.test('the same tricks with POST do not reach the users upstream either', async (t) => {
    for (const path of TRICKS) {
      const res = await rawPathRequest(h.url, 'POST', path, { token: alice.access, body: '{"item":"x"}' })
      t.ok([400, 403, 404].includes(res.status), `${JSON.stringify(path)}: status ${res.status}`)
    }
    t.same(urls(usersEcho), [])
  })

  t.test('for admin, the authorized path is the forwarded path', async (t) => {
    const cases: Array<[string, string]> = [
      ['/api/orders/../users', '/api/users'],
      ['/api/orders/%2e%2e/users', '/api/users'],
      ['/api/orders/%2E%2E/users/1002', '/api/users/1002'],
      ['//api//users', '/api/users'],
      ['/api/users/me/../1002?x=1', '/api/users/1002?x=1'],
      ['/api/%75sers', '/api/users']
    ]
    for (const [path, expected] of cases) {
      usersEcho.reset()
      ordersEcho.reset()
      const res = await rawPathRequest(h.url, 'GET', path, { token: admin.access })
      t.equal(res.status, 200, path)
      t.same(urls(usersEcho), [expected], `${path} arrives as ${expected}`)
      t.equal(ordersEcho.count, 0, `${path} does not reach the orders upstream`)
      const assertion = usersEcho.requests[0]?.headers['x-gateway-assertion']
      t.equal(typeof assertion === 'string' ? decodeJwt(assertion).aud : undefined, 'users', 'the assertion is addressed to users')
    }
  })

  t.test('alice: a dot segment that stays in her route is resolved before forwarding', async (t) => {
    const res = await rawPathRequest(h.url, 'GET', '/api/orders/a/../b/./c', { token: alice.access })
    t.equal(res.status, 200)
    t.same(urls(ordersEcho), ['/api/orders/b/c'])
    t.equal(usersEcho.count, 0)
  })

  t.test('alice: /api/users/me with redundant slashes or a trailing slash is her profile route', async (t) => {
    for (const path of ['/api/users/me/', '//api/users//me']) {
      usersEcho.reset()
      const res = await rawPathRequest(h.url, 'GET', path, { token: alice.access })
      t.equal(res.status, 200, path)
      t.same(urls(usersEcho), ['/api/users/me'], `${path} arrives as /api/users/me`)
    }
  })
})

t.test('a public route reaches its upstream without a token and without identity headers', async (t) => {
  const echo = await startEcho(t)
  const h = await build(t, {
    env: { ...RELAXED, ORDERS_URL: echo.url },
    routes: [...ROUTE_TABLE, { path: '/api/catalog', upstream: 'orders', public: true, limit: 'public' }]
  })

  const res = await rawPathRequest(h.url, 'GET', '/api/catalog/items?page=2', {
    headers: { 'x-user-id': '1003', 'x-user-roles': 'admin', 'x-user-name': 'admin', 'x-gateway-assertion': 'forged' }
  })
  t.equal(res.status, 200)
  t.equal(echo.count, 1)
  const got = echo.requests[0]!
  t.equal(got.url, '/api/catalog/items?page=2')
  t.equal(got.headers['x-user-id'], undefined)
  t.equal(got.headers['x-user-name'], undefined)
  t.equal(got.headers['x-user-roles'], undefined)
  t.equal(got.headers['x-gateway-assertion'], undefined, 'no assertion: a public route forwards no identity (the forged one is dropped)')

  t.test('a token sent to a public route gives no identity either and does not travel', async (t) => {
    echo.reset()
    const alice = await h.login('alice')
    const r = await h.request('GET', '/api/catalog', { token: alice.access })
    t.equal(r.status, 200)
    const got = echo.requests[0]!
    t.equal(got.headers.authorization, undefined)
    t.equal(got.headers['x-user-id'], undefined)
  })

  t.test('the rest of the table is unchanged', async (t) => {
    echo.reset()
    t.equal((await h.request('GET', '/api/orders')).status, 401)
    t.equal((await h.request('GET', '/api/catalogX')).status, 404)
    t.equal(echo.count, 0)
  })
})
