/** POST /auth/verify: is a token live, revocation included? (docs/tokens-and-sessions.md) */
import t from 'tap'
import { build, type Harness, type HttpResult } from '../helper.js'
import { RELAXED_LIMITS, claimsOf, waitUntilPast, refresh } from '../helpers/auth.js'

function verify (h: Harness, token: string): Promise<HttpResult> {
  return h.request('POST', '/auth/verify', { body: { token } })
}

t.test('verify', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS } })

  t.test('a live access token', async (t) => {
    const login = await h.login('alice')
    const res = await verify(h, login.access)
    t.equal(res.status, 200)
    t.same(res.body, { valid: true, token_type: 'access', sub: '1001', exp: claimsOf(login.access).exp })
    t.type(res.body.exp, 'number')
    t.ok(res.body.exp > Date.now() / 1000, 'exp is in the future')
    t.equal(res.headers.get('cache-control'), 'no-store')
  })

  t.test('a live refresh token', async (t) => {
    const login = await h.login('bob')
    const res = await verify(h, login.refresh)
    t.equal(res.status, 200)
    t.same(res.body, { valid: true, token_type: 'refresh', sub: '1002', exp: claimsOf(login.refresh).exp })
    // Verifying is not using: the token still rotates afterwards.
    t.equal((await refresh(h, login.refresh)).status, 200, 'verify does not consume the refresh token')
  })

  t.test('after logout both tokens are token_revoked', async (t) => {
    const login = await h.login('alice')
    t.equal((await verify(h, login.access)).status, 200, 'live before')
    t.equal((await h.request('POST', '/auth/logout', { token: login.access })).status, 204)
    for (const [name, token] of [['access', login.access], ['refresh', login.refresh]] as const) {
      const res = await verify(h, token)
      t.equal(res.status, 401, `${name}: 401`)
      t.equal(res.body.code, 'token_revoked', `${name}: token_revoked`)
      t.match(res.headers.get('www-authenticate'), /error="invalid_token"/, `${name}: invalid_token challenge`)
      t.match(res.headers.get('content-type'), /^application\/problem\+json/)
    }
  })

  t.test('after logout-all and admin revocation', async (t) => {
    const a = await h.login('alice')
    await h.request('POST', '/auth/logout-all', { token: a.access })
    t.equal((await verify(h, a.access)).body.code, 'token_revoked', 'logout-all')
    const b = await h.login('bob')
    const admin = await h.login('admin')
    t.equal((await h.request('DELETE', '/admin/users/1002/sessions', { token: admin.access })).status, 204)
    t.equal((await verify(h, b.refresh)).body.code, 'token_revoked', 'admin revocation')
    t.equal((await verify(h, admin.access)).status, 200, "the admin's own token is live")
  })

  t.test('garbage is token_invalid', async (t) => {
    for (const garbage of ['garbage', 'a.b.c', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMDAxIn0.', 'ey.ey.ey']) {
      const res = await verify(h, garbage)
      t.equal(res.status, 401, garbage)
      t.equal(res.body.code, 'token_invalid', garbage)
      t.match(res.headers.get('www-authenticate'), /error="invalid_token"/)
    }
  })

  t.test('a token with a tampered payload is token_invalid', async (t) => {
    const login = await h.login('alice')
    const [head, , sig] = login.access.split('.')
    const forged = Buffer.from(JSON.stringify({ ...claimsOf(login.access), sub: '1003', roles: ['admin'] })).toString('base64url')
    const res = await verify(h, `${head}.${forged}.${sig}`)
    t.equal(res.status, 401)
    t.equal(res.body.code, 'token_invalid')
  })

  t.test('a missing or mistyped field is 400 invalid_request', async (t) => {
    const cases = [
      { body: {} },
      { body: { access: 'x' } },
      { body: { token: 123 } },
      { body: { token: '' } },
      { body: { token: null } },
      { rawBody: '[]' },
      { rawBody: '{not json' },
      { rawBody: 'token=abc', contentType: 'application/x-www-form-urlencoded' },
      {}
    ]
    for (const c of cases) {
      const res = await h.request('POST', '/auth/verify', c)
      t.equal(res.status, 400, JSON.stringify(c))
      t.equal(res.body?.code, 'invalid_request', JSON.stringify(c))
    }
  })
})

t.test('verify of a rotated refresh token', async (t) => {
  t.test('within the grace window it is still live', async (t) => {
    const h = await build(t, { env: { ...RELAXED_LIMITS } })
    const login = await h.login('alice')
    const rotated = await refresh(h, login.refresh)
    t.equal(rotated.status, 200)
    t.equal((await verify(h, login.refresh)).status, 200, 'the just-rotated token within grace')
    t.equal((await verify(h, rotated.body.refresh)).status, 200, 'the current token')
    const twice = await refresh(h, rotated.body.refresh)
    const old = await verify(h, login.refresh)
    t.equal(old.status, 401, 'two rotations back: 401')
    t.equal((await verify(h, twice.body.refresh)).status, 200)
  })

  t.test('after the grace window it is 401', async (t) => {
    const h = await build(t, { env: { ...RELAXED_LIMITS, REFRESH_REUSE_GRACE: '0' } })
    const login = await h.login('alice')
    const rotated = await refresh(h, login.refresh)
    t.equal(rotated.status, 200)
    const rotatedAt = Date.now()
    await waitUntilPast(rotatedAt + 1, 'the clock to move on')
    const res = await verify(h, login.refresh)
    t.equal(res.status, 401)
    t.match(res.body.code, /^token_(revoked|reused)$/)
    t.match(res.headers.get('www-authenticate'), /error="invalid_token"/)
    t.equal((await verify(h, rotated.body.refresh)).status, 200, 'the current refresh token is live')
    t.equal((await verify(h, rotated.body.access)).status, 200, 'and so is the access token')
  })
})

t.test('verify of an expired access token is token_expired', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, ACCESS_TOKEN_TTL: '1' } })
  const login = await h.login('alice')
  const exp = claimsOf(login.access).exp as number
  // A JWT's exp has second resolution; wait (polling) until it is in the past.
  await waitUntilPast(exp * 1000, 'the access token to expire')
  const res = await verify(h, login.access)
  t.equal(res.status, 401)
  t.equal(res.body.code, 'token_expired')
  t.match(res.headers.get('www-authenticate'), /error="invalid_token"/)
  const session = await h.request('GET', '/auth/sessions', { token: login.access })
  t.equal(session.status, 401, 'bearer use is refused too')
  t.equal(session.body.code, 'token_expired')
  t.equal((await verify(h, login.refresh)).status, 200, 'the refresh token lives on')
})
