/**
 * The simplejwt-compatible API (docs/simplejwt-api.md) over real HTTP: simplejwt's bodies, DRF's error
 * shapes, JSON and form bodies, and the protections of /auth/* (rotation, reuse detection,
 * lockout, limits, events, metrics) behind them.
 */
import t, { type Test } from 'tap'
import { build, type HttpResult } from '../helper.js'
import { claimsOf, RELAXED_LIMITS } from '../helpers/auth.js'
import { metricValue, postForm } from '../helpers/simplejwt.js'

const TOKEN_NOT_VALID = { detail: 'Token is invalid or expired', code: 'token_not_valid' }

function assertDrf (t: Test, res: HttpResult, status: number, body: unknown, what: string): void {
  t.equal(res.status, status, `${what}: status`)
  t.same(res.body, body, `${what}: body`)
  t.match(res.headers.get('content-type'), /^application\/json/, `${what}: JSON, not problem+json`)
  if (status === 401) t.equal(res.headers.get('www-authenticate'), 'Bearer realm="api"', `${what}: challenge`)
}

t.test('simplejwt routes', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, REFRESH_REUSE_GRACE: '0' } })

  t.test('/api/token/ takes JSON and form bodies and answers {refresh, access}', async (t) => {
    const json = await h.request('POST', '/api/token/', { body: { username: 'alice', password: 'alice-password' } })
    t.equal(json.status, 200)
    t.same(Object.keys(json.body).sort(), ['access', 'refresh'])
    t.equal(json.headers.get('cache-control'), 'no-store')
    const claims = claimsOf(json.body.access)
    t.equal(claims.user_id, claims.sub, 'user_id claim equals sub')
    t.equal(claims.sub, '1001')

    const form = await postForm(h, '/api/token/', { username: 'bob', password: 'bob-password' })
    t.equal(form.status, 200)
    t.equal(claimsOf(form.body.access).username, 'bob')
    // The access token works on the gateway's own routes.
    t.equal((await h.request('GET', '/auth/sessions', { token: form.body.access })).status, 200)

    // /auth/login still refuses form bodies: formbody lives only in the simplejwt scope.
    const authForm = await postForm(h, '/auth/login', { username: 'bob', password: 'bob-password' })
    t.equal(authForm.status, 400)
    t.match(authForm.headers.get('content-type'), /^application\/problem\+json/)
  })

  t.test('bad input gets DRF 400s, never a 500', async (t) => {
    assertDrf(t, await h.request('POST', '/api/token/', { body: {} }), 400,
      { username: ['This field is required.'], password: ['This field is required.'] }, 'both missing')
    assertDrf(t, await postForm(h, '/api/token/', { username: '  ', password: '' }), 400,
      { username: ['This field may not be blank.'], password: ['This field may not be blank.'] }, 'blank form fields')
    assertDrf(t, await h.request('POST', '/api/token/', { body: { username: 'alice', password: { x: 1 } } }), 400,
      { password: ['Not a valid string.'] }, 'object as password')
    assertDrf(t, await h.request('POST', '/api/token/', { body: { username: null, password: 'x' } }), 400,
      { username: ['This field may not be null.'] }, 'null username')
    assertDrf(t, await h.request('POST', '/api/token/', { body: ['alice'] }), 400,
      { non_field_errors: ['Invalid data. Expected a dictionary, but got list.'] }, 'a list')
    assertDrf(t, await h.request('POST', '/api/token/refresh/', { body: {} }), 400, { refresh: ['This field is required.'] },
      'refresh missing')
    assertDrf(t, await h.request('POST', '/api/token/verify/', { rawBody: '', contentType: 'application/json' }), 400,
      { token: ['This field is required.'] }, 'empty JSON body')
    assertDrf(t, await h.request('POST', '/api/token/blacklist/', { body: { refresh: '' } }), 400,
      { refresh: ['This field may not be blank.'] }, 'blank refresh')

    const malformed = await h.request('POST', '/api/token/', { rawBody: '{"username": ', contentType: 'application/json' })
    t.equal(malformed.status, 400)
    t.match(malformed.body, { detail: /^JSON parse error - / })
    const plain = await h.request('POST', '/api/token/', { rawBody: 'username=alice', contentType: 'text/plain' })
    assertDrf(t, plain, 415, { detail: 'Unsupported media type "text/plain" in request.' }, 'text/plain')
  })

  t.test('bad credentials, unknown and inactive users: simplejwt 401', async (t) => {
    const expected = { detail: 'No active account found with the given credentials' }
    assertDrf(t, await h.request('POST', '/api/token/', { body: { username: 'alice', password: 'wrong' } }), 401, expected,
      'wrong password')
    assertDrf(t, await postForm(h, '/api/token/', { username: 'nobody', password: 'x' }), 401, expected, 'unknown user')
    assertDrf(t, await postForm(h, '/api/token/', { username: 'carol', password: 'carol-password' }), 401, expected, 'inactive user')
  })

  t.test('refresh rotates; an old refresh token is reuse and revokes the session', async (t) => {
    const pair = (await h.request('POST', '/api/token/', { body: { username: 'alice', password: 'alice-password' } })).body
    const r1 = await postForm(h, '/api/token/refresh/', { refresh: pair.refresh })
    t.equal(r1.status, 200)
    t.same(Object.keys(r1.body).sort(), ['access', 'refresh'])
    t.not(r1.body.refresh, pair.refresh, 'rotated')
    t.equal(claimsOf(r1.body.access).user_id, '1001')

    const reused = await h.request('POST', '/api/token/refresh/', { body: { refresh: pair.refresh } })
    assertDrf(t, reused, 401, TOKEN_NOT_VALID, 'reused token')
    assertDrf(t, await h.request('POST', '/api/token/refresh/', { body: { refresh: r1.body.refresh } }), 401, TOKEN_NOT_VALID,
      'the descendant is revoked too')
    assertDrf(t, await h.request('POST', '/api/token/verify/', { body: { token: r1.body.access } }), 401, TOKEN_NOT_VALID,
      'the access token is revoked')
    assertDrf(t, await h.request('POST', '/api/token/refresh/', { body: { refresh: 'not.a.token' } }), 401, TOKEN_NOT_VALID, 'garbage')
    assertDrf(t, await h.request('POST', '/api/token/refresh/', { body: { refresh: r1.body.access } }), 401, TOKEN_NOT_VALID,
      'an access token')
  })

  t.test('verify answers {} for live access and refresh tokens', async (t) => {
    const pair = (await h.request('POST', '/api/token/', { body: { username: 'bob', password: 'bob-password' } })).body
    assertDrf(t, await h.request('POST', '/api/token/verify/', { body: { token: pair.access } }), 200, {}, 'access')
    assertDrf(t, await postForm(h, '/api/token/verify/', { token: pair.refresh }), 200, {}, 'refresh')
    assertDrf(t, await postForm(h, '/api/token/verify/', { token: 'x.y.z' }), 401, TOKEN_NOT_VALID, 'garbage')
  })

  t.test('blacklist revokes the session of the token', async (t) => {
    const pair = (await h.request('POST', '/api/token/', { body: { username: 'bob', password: 'bob-password' } })).body
    assertDrf(t, await postForm(h, '/api/token/blacklist/', { refresh: pair.refresh }), 200, {}, 'blacklist')
    assertDrf(t, await h.request('POST', '/api/token/refresh/', { body: { refresh: pair.refresh } }), 401, TOKEN_NOT_VALID,
      'refresh after blacklist')
    assertDrf(t, await h.request('POST', '/api/token/blacklist/', { body: { refresh: pair.refresh } }), 401, TOKEN_NOT_VALID,
      'blacklisted twice')
    t.equal((await h.request('GET', '/auth/sessions', { token: pair.access })).status, 401, 'its access token is refused')
  })

  t.test('logout and logout-all', async (t) => {
    assertDrf(t, await h.request('POST', '/api/logout/'), 401, { detail: 'Authentication credentials were not provided.' }, 'no Bearer')
    assertDrf(t, await h.request('POST', '/api/logout/', { token: 'x.y.z' }), 401, TOKEN_NOT_VALID, 'bad Bearer')
    const a = (await h.request('POST', '/api/token/', { body: { username: 'admin', password: 'admin-password' } })).body
    const b = (await h.request('POST', '/api/token/', { body: { username: 'admin', password: 'admin-password' } })).body
    const c = (await h.request('POST', '/api/token/', { body: { username: 'admin', password: 'admin-password' } })).body
    assertDrf(t, await h.request('POST', '/api/logout/', { token: a.access, body: { refresh: b.refresh } }), 200, {},
      'logout with another session\'s refresh')
    t.equal((await h.request('GET', '/auth/sessions', { token: a.access })).status, 401, 'own session gone')
    t.equal((await h.request('GET', '/auth/sessions', { token: b.access })).status, 401, 'the other named session gone')
    t.equal((await h.request('GET', '/auth/sessions', { token: c.access })).status, 200, 'a third session stays')
    assertDrf(t, await h.request('POST', '/api/logout-all/', { token: c.access }), 200, {}, 'logout-all')
    t.equal((await h.request('GET', '/auth/sessions', { token: c.access })).status, 401, 'all sessions gone')
  })
})

t.test('the legacy alias: same answers, deprecation headers, counted apart', async (t) => {
  const sunset = 'Wed, 01 Jul 2026 00:00:00 GMT'
  const h = await build(t, { env: { ...RELAXED_LIMITS, LEGACY_SUNSET: sunset } })
  const before = await metricValue(h, 'gateway_security_events_total', { event: 'legacy_endpoint_used' })

  const ok = await postForm(h, '/api-token-auth/', { username: 'alice', password: 'alice-password' })
  t.equal(ok.status, 200)
  t.same(Object.keys(ok.body).sort(), ['access', 'refresh'])
  const bad = await h.request('POST', '/api-token-auth/', { body: { username: 'alice', password: 'nope' } })
  assertDrf(t, bad, 401, { detail: 'No active account found with the given credentials' }, 'alias, bad password')
  for (const res of [ok, bad]) {
    t.match(res.headers.get('deprecation'), /^@\d+$/, 'Deprecation (RFC 9745)')
    t.equal(res.headers.get('link'), '</api/token/>; rel="successor-version"')
    t.equal(res.headers.get('sunset'), sunset)
  }
  const plain = await h.request('POST', '/api/token/', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(plain.headers.get('deprecation'), null, '/api/token/ is not deprecated')

  t.equal(await metricValue(h, 'gateway_legacy_endpoint_requests_total', { status: '200' }), 1)
  t.equal(await metricValue(h, 'gateway_legacy_endpoint_requests_total', { status: '401' }), 1)
  t.equal(await metricValue(h, 'gateway_security_events_total', { event: 'legacy_endpoint_used' }) - before, 2)
})

t.test('limits and lockout answer DRF\'s throttled 429', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, LOCKOUT_THRESHOLD: '2', LOGIN_IP_LIMIT: '6' } })
  for (let i = 0; i < 2; i++) t.equal((await h.request('POST', '/api/token/', { body: { username: 'bob', password: 'wrong' } })).status,
    401)
  // Locked even with the right password, and shared with /auth/login.
  const locked = await postForm(h, '/api/token/', { username: 'bob', password: 'bob-password' })
  t.equal(locked.status, 429)
  const wait = Number(locked.headers.get('retry-after'))
  t.ok(wait > 1, 'Retry-After in seconds')
  t.same(locked.body, { detail: `Request was throttled. Expected available in ${wait} seconds.` })
  t.equal((await h.request('POST', '/auth/login', { body: { username: 'bob', password: 'bob-password' } })).body.code, 'account_locked',
    'the same lockout as /auth/login')

  // The per-IP login limit (6 attempts a minute) counts both routes.
  let throttled: HttpResult | undefined
  for (let i = 0; i < 6 && throttled === undefined; i++) {
    const res = await h.request('POST', '/api-token-auth/', { body: { username: 'alice', password: 'alice-password' } })
    if (res.status === 429) throttled = res
  }
  t.ok(throttled, 'limited within the window')
  const n = Number(throttled!.headers.get('retry-after'))
  t.same(throttled!.body, { detail: `Request was throttled. Expected available in ${n} ${n === 1 ? 'second' : 'seconds'}.` })
  t.ok(throttled!.headers.get('deprecation'), 'the alias says so on a 429 too')
  t.ok(await metricValue(h, 'gateway_security_events_total', { event: 'account_locked' }) >= 1, 'lockout event counted')
})

t.test('SIMPLEJWT_COMPAT=false removes the routes', async (t) => {
  const h = await build(t, { env: { SIMPLEJWT_COMPAT: 'false' } })
  for (const path of ['/api/token/', '/api-token-auth/', '/api/token/refresh/']) {
    const res = await h.request('POST', path, { body: { username: 'alice', password: 'alice-password' } })
    t.equal(res.status, 404, path)
    t.equal(res.body.code, 'not_found')
  }
})

t.test('the OpenAPI document lists the routes; the alias is deprecated', async (t) => {
  const h = await build(t)
  const doc = (await h.request('GET', '/docs/json')).body as { paths: Record<string, { post?: { deprecated?: boolean } }> }
  for (const path of ['/api/token', '/api/token/refresh', '/api/token/verify', '/api/token/blacklist', '/api/logout', '/api/logout-all']) {
    t.ok(doc.paths[path]?.post, `${path} documented`)
  }
  t.equal(doc.paths['/api-token-auth']?.post?.deprecated, true)
})

t.test('Redis away: DRF 503, never a 500', async (t) => {
  const h = await build(t)
  const pair = (await h.request('POST', '/api/token/', { body: { username: 'alice', password: 'alice-password' } })).body
  await h.redis.stop()
  const res = await h.request('POST', '/api/token/refresh/', { body: { refresh: pair.refresh } })
  t.equal(res.status, 503)
  t.same(res.body, { detail: 'Service temporarily unavailable, try again later.' })
  t.match(res.headers.get('content-type'), /^application\/json/)
})
