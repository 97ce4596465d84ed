/**
 * Issue 8, proxy findings, over real HTTP against a listening gateway:
 * - an upstream's security, CORS and gateway-cookie headers never reach the client (item 1);
 * - `Expect: 100-continue` on a proxied POST reaches the upstream as a normal POST (item 3);
 * - identity values outside Latin-1 reach the upstream percent-encoded, and the stubs decode them (item 4);
 * - a query string such as `?q=/../x` is forwarded untouched, and a segment such as `...` that is
 *   no dot-segment reaches the upstream as sent (item 10).
 */
import t from 'tap'
import { request as httpRequest } from 'node:http'
import { build } from '../helper.js'
import { startEcho } from '../helpers/echo-upstream.js'
import { rawPathRequest } from '../helpers/raw-http.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { LI_LEI, LI_LEI_PASSWORD } from '../helpers/unicode-user.js'

const HOSTILE_ANSWER_HEADERS: Record<string, string> = {
  'access-control-allow-origin': 'http://evil.example',
  'access-control-allow-credentials': 'true',
  'strict-transport-security': 'max-age=0',
  'x-frame-options': 'ALLOWALL',
  'content-security-policy': 'default-src *',
  'x-content-type-options': 'sniff-away',
  'referrer-policy': 'unsafe-url'
}

t.test('proxy hardening', async (t) => {
  const usersEcho = await startEcho(t)
  // Every answer of the orders echo carries hostile headers and two cookies, one of them the gateway's.
  const ordersEcho = await startEcho(t, { responseHeaders: HOSTILE_ANSWER_HEADERS })
  const env = { ...RELAXED_LIMITS, CORS_ORIGINS: 'https://app.example' }
  // Logins through a gateway on the real stubs (with the extra user); a second one forwards to the echoes.
  const auth = await build(t, { env, extraUsers: [LI_LEI] })
  const h = await build(t, { env: { ...env, USERS_URL: usersEcho.url, ORDERS_URL: ordersEcho.url }, keyRing: auth.keyRing,
    redis: auth.redis })
  const alice = await auth.login('alice')
  t.beforeEach(() => { usersEcho.reset(); ordersEcho.reset() })

  t.test('the gateway\'s security and CORS headers win over the upstream\'s', async (t) => {
    const res = await rawPathRequest(h.url, 'GET', '/api/orders', { token: alice.access, headers: { origin: 'https://app.example' } })
    t.equal(res.status, 200)
    t.equal(ordersEcho.count, 1, 'the upstream answered')
    t.equal(res.headers['access-control-allow-origin'], 'https://app.example', 'CORS is the gateway\'s decision')
    t.equal(res.headers['access-control-allow-credentials'], 'true')
    t.match(res.headers['strict-transport-security'], /max-age=31536000/)
    t.equal(res.headers['x-frame-options'], 'DENY')
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['referrer-policy'], 'no-referrer')
    t.match(res.headers['content-security-policy'], /default-src 'none'/)

    const foreign = await rawPathRequest(h.url, 'GET', '/api/orders', { token: alice.access, headers: { origin: 'http://evil.example' } })
    t.equal(foreign.status, 200)
    t.equal(foreign.headers['access-control-allow-origin'], undefined, 'a foreign origin gets no CORS header, whatever the upstream said')
    t.equal(foreign.headers['access-control-allow-credentials'], undefined)
  })

  t.test('an upstream never sets the gateway\'s cookies; its own cookies pass', async (t) => {
    const cookieEcho = await startEcho(t)
    const server = (await import('node:http')).createServer((_req, res) => {
      res.setHeader('set-cookie', ['refresh_token=planted; Path=/auth; HttpOnly', 'upstream_pref=dark; Path=/'])
      res.end('{}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const { port } = server.address() as { port: number }
    const g = await build(t, { env: { ...env, USERS_URL: cookieEcho.url, ORDERS_URL: `http://127.0.0.1:${port}` }, keyRing: auth.keyRing,
      redis: auth.redis })
    const res = await rawPathRequest(g.url, 'GET', '/api/orders', { token: alice.access })
    t.equal(res.status, 200)
    const cookies = (res.headers['set-cookie'] ?? []).join('\n')
    t.notMatch(cookies, /refresh_token/, 'no refresh_token cookie from the upstream')
    t.match(cookies, /upstream_pref=dark/, 'the upstream\'s own cookie passes')
  })

  t.test('Expect: 100-continue on a proxied POST is forwarded as a plain POST', async (t) => {
    const body = JSON.stringify({ item: 'x'.repeat(2048) })
    const { hostname, port } = new URL(h.url)
    const res = await new Promise<{ status: number, continued: boolean, text: string }>((resolve, reject) => {
      let continued = false
      const req = httpRequest({
        host: hostname, port: Number(port), method: 'POST', path: '/api/orders', agent: false,
        headers: { authorization: `Bearer ${alice.access}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
          expect: '100-continue' }
      }, (r) => {
        let text = ''
        r.on('data', (c: Buffer) => { text += c.toString() })
        r.on('end', () => resolve({ status: r.statusCode ?? 0, continued, text }))
      })
      req.on('continue', () => { continued = true; req.end(body) })
      req.on('error', reject)
    })
    t.equal(res.continued, true, 'the client got 100 Continue')
    t.equal(res.status, 200, res.text)
    t.equal(ordersEcho.count, 1)
    t.equal(ordersEcho.requests[0]!.body, body, 'the whole body arrived')
    t.equal(ordersEcho.requests[0]!.headers.expect, undefined, 'no Expect upstream')
  })

  t.test('identity values outside Latin-1 reach the upstream percent-encoded', async (t) => {
    const li = await auth.login(LI_LEI.username, LI_LEI_PASSWORD)
    const res = await rawPathRequest(h.url, 'GET', '/api/orders', { token: li.access })
    t.equal(res.status, 200, 'not a 502')
    const got = ordersEcho.requests[0]!
    t.equal(got.headers['x-user-id'], '2001')
    t.equal(got.headers['x-user-name'], encodeURIComponent('李雷'))
    t.equal(got.headers['x-user-roles'], `user,${encodeURIComponent('fan 🚀,café')}`, 'each role encoded, joined by ","')
    t.equal(decodeURIComponent(got.headers['x-user-name'] as string), '李雷')
    t.same((got.headers['x-user-roles'] as string).split(',').map(decodeURIComponent), LI_LEI.roles)
    // ASCII names are unchanged (the existing upstream contract for them).
    await rawPathRequest(h.url, 'GET', '/api/orders', { token: alice.access })
    t.equal(ordersEcho.requests[1]!.headers['x-user-name'], 'alice')
  })

  t.test('the orders stub decodes the identity headers', async (t) => {
    const li = await auth.login(LI_LEI.username, LI_LEI_PASSWORD)
    const created = await auth.request('POST', '/api/orders', { token: li.access, body: { item: '书', quantity: 1 } })
    t.equal(created.status, 201, created.text)
    t.equal(created.body.user_name, '李雷')
    t.equal(created.body.user_id, '2001')
    const me = await auth.request('GET', '/api/users/me', { token: li.access })
    t.equal(me.status, 200)
    t.equal(me.body.username, '李雷')
  })

  t.test('the query string is forwarded untouched; only the path is normalized', async (t) => {
    for (const query of ['?q=/../x', '?q=..%2F..%2Fetc&x=%2e%2e', '?a=1&a=2&b=%20+c']) {
      const res = await rawPathRequest(h.url, 'GET', `/api/orders/list${query}`, { token: alice.access })
      t.equal(res.status, 200, `${query}: ${res.text}`)
      t.equal(ordersEcho.requests.at(-1)?.url, `/api/orders/list${query}`, `${query} arrives as sent`)
    }
    const dotted = await rawPathRequest(h.url, 'GET', '/api/orders/a/../list?q=/../x', { token: alice.access })
    t.equal(dotted.status, 200)
    t.equal(ordersEcho.requests.at(-1)?.url, '/api/orders/list?q=/../x', 'the path normalized, the query as sent')
  })

  t.test('segments made of dots that are no dot-segments are forwarded as sent', async (t) => {
    for (const path of ['/api/orders/...', '/api/orders/..draft/x..', '/api/orders/a.../....?q=%252E']) {
      const res = await rawPathRequest(h.url, 'GET', path, { token: alice.access })
      t.equal(res.status, 200, `${path}: ${res.text}`)
      t.equal(ordersEcho.requests.at(-1)?.url, path, `${path} arrives as sent`)
    }
    // A real dot-segment is still resolved before routing, and climbing above the root refused.
    const climbed = await rawPathRequest(h.url, 'GET', '/api/orders/.../../list', { token: alice.access })
    t.equal(climbed.status, 200)
    t.equal(ordersEcho.requests.at(-1)?.url, '/api/orders/list')
    const above = await rawPathRequest(h.url, 'GET', '/api/../../etc/passwd', { token: alice.access })
    t.equal(above.status, 400)
  })
})
