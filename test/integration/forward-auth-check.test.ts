/**
 * /auth/check (forward authentication) asked directly, as each style of proxy would: the same
 * decision as the gateway's own proxy, the original request read only from the asking proxy's
 * style, identity headers and a bound assertion on an allowed request, the proxy's refusals, 404
 * for callers not listed, and 503 while Redis is away.
 */
import t from 'tap'
import { decodeJwt } from 'jose'
import type { Redis } from 'ioredis'
import { build } from '../helper.js'
import { askFrom } from '../helpers/forward-auth.js'
import { clientToken, registerClient } from '../helpers/machine-clients.js'
import { waitFor } from '../helpers/redis-server.js'

const TRAEFIK = '127.0.0.2'
const NGINX = '127.0.0.3'
const INGRESS = '127.0.0.4'
const ENVOY = '127.0.0.5'
const CADDY = '127.0.0.6'
const STRANGER = '127.0.0.9'
const PROXIES = `${TRAEFIK}=traefik,${NGINX}=nginx,${INGRESS}=ingress-nginx,${ENVOY}=envoy,${CADDY}/32=caddy`

/** The headers a proxy of each style sends for `method path` (plus the client's own). */
function styleHeaders (from: string, method: string, uri: string): Record<string, string> {
  switch (from) {
    case TRAEFIK: case CADDY: return { 'x-forwarded-method': method, 'x-forwarded-uri': uri }
    case NGINX: return { 'x-original-method': method, 'x-original-uri': uri }
    case INGRESS: return { 'x-original-method': method, 'x-original-url': `https://api.example.com${uri}` }
    default: return {}
  }
}

t.test('forward authentication, asked directly', async (t) => {
  const h = await build(t, { env: { FORWARD_AUTH_PROXIES: PROXIES } })
  const alice = await h.login('alice')
  const admin = await h.login('admin')
  const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

  /** Asks as `from` about `method uri`; Envoy puts the original into the path and method. */
  const ask = (from: string, method: string, uri: string, extra: Record<string, string> = {}): ReturnType<typeof askFrom> =>
    from === ENVOY
      ? askFrom(h.url, from, method, `/auth/check${uri}`, { 'x-forwarded-for': '203.0.113.7', ...extra })
      : askFrom(h.url, from, 'GET', '/auth/check', { 'x-forwarded-for': '203.0.113.7', ...styleHeaders(from, method, uri), ...extra })

  t.test('allowed: 200, empty body, identity and a bound assertion, for every style', async (t) => {
    for (const from of [TRAEFIK, NGINX, INGRESS, ENVOY, CADDY]) {
      const res = await ask(from, 'POST', '/api/orders/./?x=1', bearer(alice.access))
      t.equal(res.status, 200, `${from} allowed`)
      t.equal(res.text, '', 'empty body')
      t.equal(res.headers['x-user-id'], alice.user.id)
      t.equal(res.headers['x-user-name'], 'alice')
      t.equal(res.headers['x-user-roles'], 'user')
      t.type(res.headers['x-request-id'], 'string')
      const claims = decodeJwt(String(res.headers['x-gateway-assertion']))
      t.equal(claims.aud, 'orders', 'for the route\'s upstream')
      t.equal(claims.sub, alice.user.id)
      t.equal(claims.method, 'POST', 'the original method')
      t.equal(claims.path, '/api/orders', 'the normalized original path, no query')
    }
  })

  t.test('the stub services hold a bound assertion to its own method and path', async (t) => {
    const allowed = await ask(NGINX, 'GET', '/api/orders?page=1', bearer(alice.access))
    const assertion = String(allowed.headers['x-gateway-assertion'])
    const orders = h.config.upstreams.orders
    const call = (method: string, path: string): Promise<Response> =>
      fetch(orders + path, { method, headers: { 'x-gateway-assertion': assertion, 'content-type': 'application/json' },
        ...(method === 'POST' ? { body: '{"item":"x","quantity":1}' } : {}) })
    t.equal((await call('GET', '/api/orders')).status, 200, 'its own request')
    t.equal((await call('GET', '/api/orders?page=2')).status, 200, 'another query of the same path')
    const replayedMethod = await call('POST', '/api/orders')
    t.equal(replayedMethod.status, 401, 'replayed with another method')
    t.equal(((await replayedMethod.json()) as { code: string }).code, 'gateway_assertion_required')
    t.equal((await call('GET', '/api/orders/1')).status, 401, 'replayed on another path')
  })

  t.test('refusals are the own proxy\'s', async (t) => {
    // Whole answers: the status, the problem body (its request_id aside) and the headers a client reads.
    const withoutId = (body: Record<string, unknown> | null): Record<string, unknown> | null => {
      if (body === null) return null
      const { request_id: _id, ...rest } = body
      return rest
    }
    for (const [what, token, path] of [['no token', undefined, '/api/orders'], ['not a token', 'not.a.token', '/api/orders'],
      ['a user without the role', alice.access, '/api/users']] as const) {
      const own = await h.request('GET', path, token === undefined ? {} : { token })
      for (const from of [TRAEFIK, ENVOY, CADDY, INGRESS]) {
        const checked = await ask(from, 'GET', path, token === undefined ? {} : bearer(token))
        t.equal(checked.status, own.status, `${what} (${from}): the status`)
        t.same(withoutId(checked.body), withoutId(own.body), `${what} (${from}): the problem body`)
        for (const name of ['content-type', 'cache-control', 'www-authenticate']) {
          t.equal(checked.headers[name] ?? null, own.headers.get(name), `${what} (${from}): ${name}`)
        }
      }
    }

    const own = await h.request('GET', '/api/users', { token: alice.access })
    const checked = await ask(TRAEFIK, 'GET', '/api/users', bearer(alice.access))
    t.equal(checked.status, 403)
    t.equal(checked.body.code, own.body.code, 'a user without the role: the own proxy\'s code')
    t.equal(checked.body.instance, '/api/users', 'about the original path')
    t.match(String(checked.headers['content-type']), /^application\/problem\+json/)

    const none = await ask(CADDY, 'GET', '/api/orders')
    t.equal(none.status, 401)
    t.equal(none.body.code, 'token_missing')
    t.equal(none.headers['www-authenticate'], 'Bearer realm="auth-gateway"')
    const bad = await ask(ENVOY, 'GET', '/api/orders', bearer('not.a.token'))
    t.equal(bad.status, 401)
    t.equal(bad.body.code, 'token_invalid')
    t.match(String(bad.headers['www-authenticate']), /error="invalid_token"/)

    for (const [method, uri] of [['GET', '/no/such/route'], ['DELETE', '/api/users/me'], ['GET', '/']]) {
      const res = await ask(INGRESS, method!, uri!, bearer(admin.access))
      t.equal(res.status, 403, `${method} ${uri}: outside the route table is 403`)
      t.equal(res.body.code, 'forbidden')
    }
    const admitted = await ask(INGRESS, 'GET', '/api/users', bearer(admin.access))
    t.equal(admitted.status, 200, 'the admin-only route for an admin')
    t.equal(admitted.headers['x-user-roles'], 'admin')

    const refused = await ask(NGINX, 'GET', '/api/orders/%2e%2e%2fusers', bearer(admin.access))
    t.equal(refused.status, 403, 'nginx style: any refusal other than 401 is carried by a 403')
    t.equal(refused.headers['x-gateway-status'], '400', 'the real status')
    t.equal(JSON.parse(String(refused.headers['x-gateway-problem'])).code, 'invalid_request', 'the real problem')
    t.equal(refused.body.code, 'invalid_request')
  })

  t.test('the original request is read only from the asking proxy\'s style', async (t) => {
    // The client smuggles another style's header naming an admin-only path; the route decided is
    // the one the proxy names, and the other style's header changes nothing.
    const cases: Array<[string, Record<string, string>]> = [
      [TRAEFIK, { 'x-original-uri': '/api/orders', 'x-original-method': 'GET', 'x-original-url': 'http://x/api/orders' }],
      [CADDY, { 'x-original-uri': '/api/orders', 'x-original-method': 'GET' }],
      [NGINX, { 'x-forwarded-uri': '/api/orders', 'x-forwarded-method': 'GET', 'x-original-url': 'http://x/api/orders' }],
      [INGRESS, { 'x-original-uri': '/api/orders', 'x-forwarded-uri': '/api/orders' }],
      [ENVOY, { 'x-original-uri': '/api/orders', 'x-forwarded-uri': '/api/orders', 'x-forwarded-method': 'GET' }]
    ]
    for (const [from, smuggled] of cases) {
      const res = await ask(from, 'GET', '/api/users', { ...bearer(alice.access), ...smuggled })
      t.equal(res.status, 403, `${from}: the path of its own style is decided (admin-only: refused)`)
      const reverse = await ask(from, 'GET', '/api/orders',
        { ...bearer(alice.access), ...Object.fromEntries(
          Object.keys(smuggled).map((k) => [k, k.endsWith('method') ? 'GET' : k.endsWith('url') ? 'http://x/api/users' : '/api/users'])) })
      t.equal(reverse.status, 200, `${from}: another style's header naming an admin path does not refuse an allowed one either`)
      t.equal(decodeJwt(String(reverse.headers['x-gateway-assertion'])).path, '/api/orders')
    }
    const missing = await askFrom(h.url, TRAEFIK, 'GET', '/auth/check',
      { ...bearer(alice.access), 'x-original-uri': '/api/orders', 'x-original-method': 'GET' })
    t.equal(missing.status, 400, 'a traefik proxy that sends no X-Forwarded-Uri gets nothing from another style')
  })

  t.test('callers not listed: the endpoint does not exist', async (t) => {
    for (const path of ['/auth/check', '/auth/check/api/orders']) {
      const res = await askFrom(h.url, STRANGER, 'GET', path, { ...bearer(alice.access), ...styleHeaders(TRAEFIK, 'GET', '/api/orders') })
      t.equal(res.status, 404, `${path} from an unlisted address`)
      t.equal(res.body.code, 'not_found')
    }
    const envoyPathFromTraefik = await ask(TRAEFIK, 'GET', '/api/orders', bearer(alice.access))
    t.equal(envoyPathFromTraefik.status, 200)
    t.equal((await askFrom(h.url, TRAEFIK, 'GET', '/auth/check/api/orders', bearer(alice.access))).status, 404,
      'the path form is Envoy\'s only')
  })

  t.test('one Redis round trip per check, as through the own proxy', async (t) => {
    t.equal((await ask(NGINX, 'GET', '/api/orders', bearer(alice.access))).status, 200)
    t.equal((await ask(ENVOY, 'GET', '/api/users', bearer(admin.access))).status, 200)
    const redis = h.redis.client() as Redis
    const monitor = await redis.monitor()
    t.teardown(() => { monitor.disconnect(); redis.disconnect() })
    const sent: string[] = []
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') sent.push(String(args[0]).toLowerCase())
    })
    for (let i = 0; i < 5; i++) {
      t.equal((await ask(NGINX, 'GET', '/api/orders', bearer(alice.access))).status, 200)
      t.equal((await ask(ENVOY, 'GET', '/api/users', bearer(admin.access))).status, 200)
    }
    // With the session cache (docs/session-cache.md): at most one script per check, and the
    // invalidation connection's heartbeat PINGs. A marker ends the monitored stretch.
    await redis.echo('end of checks')
    await waitFor(() => sent.includes('echo'), 'the monitored commands')
    const checks = sent.slice(0, sent.indexOf('echo'))
    const scripts = checks.filter((c) => c === 'evalsha' || c === 'eval').length
    if (process.env.SESSION_CACHE === 'off') t.equal(scripts, 10, 'one script per check')
    else t.ok(scripts <= 10, `at most one script per check: ${scripts}`)
    t.same(
      checks.filter((c) => c !== 'evalsha' && c !== 'eval' && (process.env.SESSION_CACHE === 'off' || c !== 'ping')),
      [],
      'and no other command'
    )
  })

  t.test('machine clients: scopes by the original method, client headers', async (t) => {
    const reader = await registerClient(h.url, admin.access, ['orders:read'], 'reporting job')
    const token = await clientToken(h.url, reader)
    const read = await ask(TRAEFIK, 'GET', '/api/orders', bearer(token))
    t.equal(read.status, 200)
    t.equal(read.headers['x-client-id'], reader.client_id)
    t.equal(read.headers['x-client-scopes'], 'orders:read')
    t.equal(read.headers['x-user-id'], undefined, 'no user identity')
    t.equal(decodeJwt(String(read.headers['x-gateway-assertion'])).client_id, reader.client_id)
    const write = await ask(TRAEFIK, 'POST', '/api/orders', bearer(token))
    t.equal(write.status, 403, 'POST needs orders:write: the original method is the one checked')
    t.equal(write.body.code, 'forbidden')
    t.equal((await ask(ENVOY, 'POST', '/api/orders', bearer(token))).status, 403, 'Envoy\'s method too')
  })

  t.test('a revoked token is refused at the next check', async (t) => {
    const bob = await h.login('bob')
    t.equal((await ask(CADDY, 'GET', '/api/orders', bearer(bob.access))).status, 200)
    t.equal((await h.request('POST', '/auth/logout', { token: bob.access })).status, 204)
    const res = await ask(CADDY, 'GET', '/api/orders', bearer(bob.access))
    t.equal(res.status, 401)
    t.equal(res.body.code, 'token_revoked')
  })

  t.test('Redis away: 503 (carried by a 403 for nginx)', async (t) => {
    await h.redis.kill()
    t.teardown(() => h.redis.restart())
    const res = await ask(TRAEFIK, 'GET', '/api/orders', bearer(alice.access))
    t.equal(res.status, 503)
    t.equal(res.body.code, 'store_unavailable')
    const viaNginx = await ask(NGINX, 'GET', '/api/orders', bearer(alice.access))
    t.equal(viaNginx.status, 403)
    t.equal(viaNginx.headers['x-gateway-status'], '503')
    t.equal(JSON.parse(String(viaNginx.headers['x-gateway-problem'])).code, 'store_unavailable')
  })
})

t.test('limits count against the client named in X-Forwarded-For, with Retry-After', async (t) => {
  const h = await build(t, { env: { FORWARD_AUTH_PROXIES: PROXIES, API_USER_LIMIT: '3' } })
  const alice = await h.login('alice')
  const headers = { authorization: `Bearer ${alice.access}`, 'x-forwarded-for': '198.51.100.1',
    ...styleHeaders(CADDY, 'GET', '/api/orders') }
  const statuses: number[] = []
  let last = await askFrom(h.url, CADDY, 'GET', '/auth/check', headers)
  statuses.push(last.status)
  while (last.status === 200 && statuses.length < 10) {
    last = await askFrom(h.url, CADDY, 'GET', '/auth/check', headers)
    statuses.push(last.status)
  }
  t.same(statuses, [200, 200, 200, 429], 'the per-user limit of the own proxy')
  t.equal(last.body.code, 'rate_limited')
  t.match(String(last.headers['retry-after']), /^\d+$/)
  const viaNginx = await askFrom(h.url, NGINX, 'GET', '/auth/check',
    { authorization: `Bearer ${alice.access}`, ...styleHeaders(NGINX, 'GET', '/api/orders') })
  t.equal(viaNginx.status, 403)
  t.equal(viaNginx.headers['x-gateway-status'], '429')
  t.match(String(viaNginx.headers['retry-after']), /^\d+$/, 'Retry-After stays on the carried refusal')

  // Events name the proxy's client (the last X-Forwarded-For address), not the proxy.
  const admin = await h.login('admin')
  await waitFor(async () => {
    const res = await h.request('GET', '/admin/events?event=rate_limited', { token: admin.access })
    return (res.body.events as any[] | undefined)?.some((e) => e.ip === '198.51.100.1') === true
  }, 'a rate_limited event for the client behind the proxy')
  const all = await h.request('GET', '/admin/events?event=rate_limited', { token: admin.access })
  t.notOk((all.body.events as any[]).some((e) => e.ip === CADDY), 'no event names the proxy')
})

t.test('a public route: 200 without identity, counted per client IP', async (t) => {
  const h = await build(t, {
    env: { FORWARD_AUTH_PROXIES: PROXIES, PUBLIC_IP_LIMIT: '2' },
    routes: [
      { path: '/api/orders/catalogue', upstream: 'orders', public: true, limit: 'public' },
      { path: '/api/orders', upstream: 'orders', limit: 'api' }
    ]
  })
  const headers = { 'x-forwarded-for': '198.51.100.9', ...styleHeaders(TRAEFIK, 'GET', '/api/orders/catalogue') }
  const first = await askFrom(h.url, TRAEFIK, 'GET', '/auth/check', headers)
  t.equal(first.status, 200)
  t.equal(first.headers['x-user-id'], undefined, 'no identity')
  t.equal(first.headers['x-client-id'], undefined)
  t.equal(first.headers['x-gateway-assertion'], undefined, 'no assertion: a public route forwards no identity')
  t.equal((await askFrom(h.url, TRAEFIK, 'GET', '/auth/check', headers)).status, 200)
  const limited = await askFrom(h.url, TRAEFIK, 'GET', '/auth/check', headers)
  t.equal(limited.status, 429, 'the public limit per client IP')
  t.match(String(limited.headers['retry-after']), /^\d+$/)
  const other = await askFrom(h.url, TRAEFIK, 'GET', '/auth/check', { ...headers, 'x-forwarded-for': '198.51.100.10' })
  t.equal(other.status, 200, 'another client behind the same proxy has its own count')
})
