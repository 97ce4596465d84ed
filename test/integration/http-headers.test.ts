/** Every response: security headers, no-store, CORS, request ids; keys, health and docs (docs/endpoints.md). */
import t, { type Test } from 'tap'
import { build, type HttpResult } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'

const APP_ORIGIN = 'https://app.example'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

function assertSecurityHeaders (t: Test, res: HttpResult, what: string): void {
  const h = res.headers
  t.match(h.get('strict-transport-security'), /max-age=\d+/, `${what}: Strict-Transport-Security`)
  t.equal(h.get('x-content-type-options'), 'nosniff', `${what}: X-Content-Type-Options`)
  t.equal(h.get('x-frame-options'), 'DENY', `${what}: X-Frame-Options`)
  t.ok((h.get('referrer-policy') ?? '').length > 0, `${what}: Referrer-Policy`)
  const csp = h.get('content-security-policy') ?? ''
  t.match(csp, /default-src 'none'/, `${what}: a restrictive Content-Security-Policy`)
  t.match(csp, /frame-ancestors 'none'/, `${what}: CSP frame-ancestors 'none'`)
}

t.test('http headers', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, CORS_ORIGINS: APP_ORIGIN } })

  t.test('security headers on every kind of gateway answer', async (t) => {
    const health = await h.request('GET', '/healthz')
    t.equal(health.status, 200)
    assertSecurityHeaders(t, health, '/healthz')

    const missing = await h.request('GET', '/no/such/route')
    t.equal(missing.status, 404)
    t.equal(missing.body.code, 'not_found')
    assertSecurityHeaders(t, missing, '404')

    const login = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
    t.equal(login.status, 200)
    assertSecurityHeaders(t, login, 'login 200')

    const failed = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'wrong' } })
    t.equal(failed.status, 401)
    assertSecurityHeaders(t, failed, 'login 401')

    const bad = await h.request('POST', '/auth/login', { rawBody: '{oops' })
    t.equal(bad.status, 400)
    assertSecurityHeaders(t, bad, 'login 400')
  })

  t.test('Cache-Control: no-store on auth answers', async (t) => {
    const ok = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
    t.equal(ok.status, 200)
    t.equal(ok.headers.get('cache-control'), 'no-store', 'login 200')
    const failed = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'wrong' } })
    t.equal(failed.status, 401)
    t.equal(failed.headers.get('cache-control'), 'no-store', 'login 401')
    const sessions = await h.request('GET', '/auth/sessions', { token: ok.body.access })
    t.equal(sessions.status, 200)
    t.equal(sessions.headers.get('cache-control'), 'no-store', 'sessions')
    const refreshed = await h.request('POST', '/auth/refresh', { body: { refresh: ok.body.refresh } })
    t.equal(refreshed.status, 200)
    t.equal(refreshed.headers.get('cache-control'), 'no-store', 'refresh')
    const verified = await h.request('POST', '/auth/verify', { body: { token: ok.body.access } })
    t.equal(verified.status, 200)
    t.equal(verified.headers.get('cache-control'), 'no-store', 'verify')
    const unauth = await h.request('GET', '/auth/sessions')
    t.equal(unauth.status, 401)
    t.equal(unauth.headers.get('cache-control'), 'no-store', 'sessions 401')
  })

  t.test('CORS preflight from an allowed origin', async (t) => {
    const res = await h.request('OPTIONS', '/auth/login', {
      headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
    })
    t.equal(res.status, 204)
    t.equal(res.headers.get('access-control-allow-origin'), APP_ORIGIN)
    t.equal(res.headers.get('access-control-allow-credentials'), 'true')
    t.match(res.headers.get('access-control-allow-methods'), /POST/)
    t.match((res.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /content-type/)
    t.match(res.headers.get('vary') ?? '', /origin/i, 'Vary: Origin')
  })

  // docs/endpoints.md: "any other origin gets no CORS headers". @fastify/cors with an origin array still
  // sends Allow-Credentials, Allow-Methods, Allow-Headers, Expose-Headers and Max-Age to a foreign
  // origin (only Allow-Origin is left out); the fix belongs in src/plugins/external/cors.ts.

  t.test('CORS preflight from another origin gets no CORS headers', async (t) => {
    const res = await h.request('OPTIONS', '/auth/login', {
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' }
    })
    t.equal(res.headers.get('access-control-allow-origin'), null, 'no Access-Control-Allow-Origin')
    const cors = [...res.headers.keys()].filter((k) => k.startsWith('access-control-'))
    t.same(cors, [], 'no access-control-* header at all')
  })

  t.test('CORS on simple requests', async (t) => {
    const allowed = await h.request('GET', '/healthz', { headers: { origin: APP_ORIGIN } })
    t.equal(allowed.headers.get('access-control-allow-origin'), APP_ORIGIN)
    t.equal(allowed.headers.get('access-control-allow-credentials'), 'true')
    const other = await h.request('GET', '/healthz', { headers: { origin: 'https://evil.example' } })
    t.equal(other.status, 200)
    t.equal(other.headers.get('access-control-allow-origin'), null)
    const cors = [...other.headers.keys()].filter((k) => k.startsWith('access-control-'))
    t.same(cors, [], 'no access-control-* header at all')
    const none = await h.request('GET', '/healthz')
    t.equal(none.headers.get('access-control-allow-origin'), null)
  })

  t.test('X-Request-Id: a sane id is echoed, anything else is replaced', async (t) => {
    const sane = 'req-123.abc:DEF_456'
    const echoed = await h.request('GET', '/healthz', { headers: { 'x-request-id': sane } })
    t.equal(echoed.headers.get('x-request-id'), sane)
    const problem = await h.request('GET', '/no/such/route', { headers: { 'x-request-id': sane } })
    t.equal(problem.headers.get('x-request-id'), sane, 'on an error too')
    t.equal(problem.body.request_id, sane, 'and in the problem body')

    for (const insane of ['bad id with spaces', 'x'.repeat(300), '<script>', 'a/b']) {
      const res = await h.request('GET', '/healthz', { headers: { 'x-request-id': insane } })
      const id = res.headers.get('x-request-id')
      t.not(id, insane, `${JSON.stringify(insane.slice(0, 20))} is replaced`)
      t.match(id, UUID, 'by a generated id')
    }
    const generated = await h.request('GET', '/healthz')
    t.match(generated.headers.get('x-request-id'), UUID, 'generated when absent')
    const again = await h.request('GET', '/healthz')
    t.not(again.headers.get('x-request-id'), generated.headers.get('x-request-id'), 'unique per request')
  })

  t.test('JWKS: public keys only', async (t) => {
    const res = await h.request('GET', '/.well-known/jwks.json')
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /^application\/json/)
    t.ok(Array.isArray(res.body.keys) && res.body.keys.length > 0, 'at least one key')
    for (const key of res.body.keys as Array<Record<string, unknown>>) {
      t.type(key.kid, 'string')
      t.ok((key.kid as string).length > 0, 'a kid')
      t.equal(key.alg, 'ES256')
      t.equal(key.use, 'sig')
      t.equal(key.kty, 'EC')
      t.notOk('d' in key, 'no private member d')
      for (const priv of ['p', 'q', 'dp', 'dq', 'qi', 'k']) t.notOk(priv in key, `no private member ${priv}`)
    }
    t.same(res.body.keys.map((k: { kid: string }) => k.kid), h.keyRing.publicJwks.keys.map((k) => k.kid), 'the key ring\'s keys')
    t.notMatch(res.text, /"d"\s*:/, 'no d anywhere in the document')
    assertSecurityHeaders(t, res, 'jwks')
  })

  t.test('health and readiness', async (t) => {
    const health = await h.request('GET', '/healthz')
    t.equal(health.status, 200)
    const ready = await h.request('GET', '/readyz')
    t.equal(ready.status, 200)
  })

  t.test('GET /docs serves the UI', async (t) => {
    let res = await h.request('GET', '/docs')
    for (let hops = 0; res.status >= 300 && res.status < 400 && hops < 3; hops++) {
      const location = res.headers.get('location') ?? ''
      res = await h.request('GET', new URL(location, `${h.url}/docs`).pathname)
    }
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /^text\/html/)
    t.match(res.text, /<html/i)
    t.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/, 'the docs page has a CSP and is never framed')
    t.equal(res.headers.get('x-content-type-options'), 'nosniff')
  })

  t.test('GET /docs/json is the OpenAPI document of the contract\'s routes', async (t) => {
    const res = await h.request('GET', '/docs/json')
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /^application\/json/)
    const doc = res.body as { openapi: string, paths: Record<string, Record<string, unknown>> }
    t.match(doc.openapi, /^3\./)
    const expected: Array<[string, string]> = [
      ['/auth/login', 'post'],
      ['/auth/refresh', 'post'],
      ['/auth/verify', 'post'],
      ['/auth/logout', 'post'],
      ['/auth/logout-all', 'post'],
      ['/auth/sessions', 'get'],
      ['/auth/sessions/{id}', 'delete'],
      ['/admin/users/{userId}/sessions', 'delete']
    ]
    for (const [path, method] of expected) {
      t.ok(doc.paths[path] !== undefined, `lists ${path}`)
      t.ok(doc.paths[path]?.[method] !== undefined, `${method.toUpperCase()} ${path}`)
    }
  })
})

t.test('without CORS_ORIGINS no origin gets CORS headers', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS } })
  const res = await h.request('OPTIONS', '/auth/login', {
    headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST' }
  })
  t.equal(res.headers.get('access-control-allow-origin'), null)
  const simple = await h.request('GET', '/healthz', { headers: { origin: APP_ORIGIN } })
  t.equal(simple.headers.get('access-control-allow-origin'), null)
})
