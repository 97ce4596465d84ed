/** POST /auth/refresh: rotation, the reuse grace window and reuse detection (docs/tokens-and-sessions.md). */
import t from 'tap'
import { build } from '../helper.js'
import { RELAXED_LIMITS, assertTokenRefused, claimsOf, waitUntilPast, refresh } from '../helpers/auth.js'

const JWS = /^[\w-]+\.[\w-]+\.[\w-]+$/

t.test('refresh with the default grace window', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS } })

  t.test('happy path: new access and new refresh, the old access token still works', async (t) => {
    const login = await h.login('alice')
    const res = await refresh(h, login.refresh)
    t.equal(res.status, 200)
    t.equal(res.body.token_type, 'Bearer')
    t.equal(res.body.expires_in, 900)
    t.equal(res.body.refresh_expires_in, 604800)
    t.match(res.body.access, JWS)
    t.match(res.body.refresh, JWS)
    t.not(res.body.access, login.access, 'a new access token')
    t.not(res.body.refresh, login.refresh, 'a new refresh token')
    t.equal(res.headers.get('cache-control'), 'no-store')

    const oldClaims = claimsOf(login.refresh)
    const newAccess = claimsOf(res.body.access)
    const newRefresh = claimsOf(res.body.refresh)
    t.equal(newAccess.token_type, 'access')
    t.equal(newRefresh.token_type, 'refresh')
    t.equal(newAccess.sub, '1001')
    t.equal(newAccess.username, 'alice')
    t.same(newAccess.roles, ['user'])
    t.equal(newRefresh.sid, oldClaims.sid, 'same session')
    t.equal(newAccess.sid, oldClaims.sid, 'same session')
    t.not(newRefresh.jti, oldClaims.jti)

    const oldAccess = await h.request('GET', '/auth/sessions', { token: login.access })
    t.equal(oldAccess.status, 200, 'the access token of the login still works')
    const newAcc = await h.request('GET', '/auth/sessions', { token: res.body.access })
    t.equal(newAcc.status, 200, 'the new access token works')

    const next = await refresh(h, res.body.refresh)
    t.equal(next.status, 200, 'the new refresh token rotates in turn')
    t.not(next.body.refresh, res.body.refresh)
  })

  t.test('20 parallel refreshes of one token converge on one chain', async (t) => {
    const login = await h.login('alice')
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(h, login.refresh)))
    t.same(results.map((r) => r.status), Array(20).fill(200), 'every call is 200')
    const refreshTokens = new Set(results.map((r) => r.body.refresh))
    t.equal(refreshTokens.size, 1, 'every call got the same new refresh token')
    const [chain] = [...refreshTokens] as string[]
    t.match(chain, JWS)
    t.not(chain, login.refresh)
    for (const r of results) t.equal(claimsOf(r.body.access).sid, claimsOf(login.refresh).sid)

    // Exactly one chain: the returned token is the session's current one and rotates fine.
    const next = await refresh(h, chain!)
    t.equal(next.status, 200, 'the converged token refreshes')
    t.not(next.body.refresh, chain)
    const after = await refresh(h, next.body.refresh)
    t.equal(after.status, 200, 'and the chain goes on')

    const list = await h.request('GET', '/auth/sessions', { token: after.body.access })
    t.equal(list.status, 200)
    t.equal(list.body.sessions.filter((s: { id: string }) => s.id === claimsOf(login.refresh).sid).length, 1, 'one session')
  })

  t.test('reusing the just-rotated token within the grace window gives the same token', async (t) => {
    const login = await h.login('alice')
    const first = await refresh(h, login.refresh)
    t.equal(first.status, 200)
    const again = await refresh(h, login.refresh)
    t.equal(again.status, 200, 'within grace: 200')
    t.equal(again.body.refresh, first.body.refresh, 'the same new refresh token as the first call')
    t.match(again.body.access, JWS)

    const access = await h.request('GET', '/auth/sessions', { token: first.body.access })
    t.equal(access.status, 200, 'the session is alive')
    const next = await refresh(h, first.body.refresh)
    t.equal(next.status, 200, 'the chain continues')
  })

  t.test('reuse of an older token (two rotations back) within grace revokes the session', async (t) => {
    const login = await h.login('alice')
    const r1 = await refresh(h, login.refresh)
    t.equal(r1.status, 200)
    const r2 = await refresh(h, r1.body.refresh)
    t.equal(r2.status, 200)

    const reuse = await refresh(h, login.refresh)
    assertTokenRefused(t, reuse, 'token_reused', 'two rotations back')

    assertTokenRefused(t, await refresh(h, r2.body.refresh), 'token_revoked', 'the latest refresh token')
    assertTokenRefused(t, await refresh(h, r1.body.refresh), 'token_revoked', 'the just-rotated refresh token')
    for (const [name, access] of [['login', login.access], ['first refresh', r1.body.access], ['second refresh', r2.body.access]]) {
      assertTokenRefused(t, await h.request('GET', '/auth/sessions', { token: access }), 'token_revoked', `access token of the ${name}`)
    }
  })

  t.test('reuse only revokes the session it belongs to', async (t) => {
    const victim = await h.login('alice')
    const other = await h.login('alice')
    const r1 = await refresh(h, victim.refresh)
    await refresh(h, r1.body.refresh)
    t.equal((await refresh(h, victim.refresh)).status, 401)
    t.equal((await h.request('GET', '/auth/sessions', { token: other.access })).status, 200, "alice's other session is alive")
    t.equal((await refresh(h, other.refresh)).status, 200, 'and its refresh token works')
  })

  t.test('an access token is not a refresh token', async (t) => {
    const login = await h.login('alice')
    assertTokenRefused(t, await refresh(h, login.access), 'token_invalid', 'access token as refresh')
    t.equal((await refresh(h, login.refresh)).status, 200, 'the session is untouched')
  })

  t.test('a refresh token is not an access token', async (t) => {
    const login = await h.login('alice')
    assertTokenRefused(t, await h.request('GET', '/auth/sessions', { token: login.refresh }), 'token_invalid', 'refresh token as bearer')
  })

  t.test('no token: 401 token_missing without an invalid_token challenge', async (t) => {
    const res = await h.request('POST', '/auth/refresh', { body: {} })
    t.equal(res.status, 401)
    t.equal(res.body.code, 'token_missing')
    t.match(res.headers.get('www-authenticate'), /^Bearer\b/)
    t.notMatch(res.headers.get('www-authenticate'), /error=/)
  })

  t.test('garbage tokens: 401 token_invalid', async (t) => {
    for (const garbage of ['garbage', 'a.b.c', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMDAxIn0.', 'x'.repeat(9000)]) {
      const res = await refresh(h, garbage)
      // Over the schema's maxLength is a 400; anything else that is not a token is token_invalid.
      if (garbage.length > 8192) {
        t.equal(res.status, 400, 'too long: 400')
        t.equal(res.body.code, 'invalid_request')
      } else {
        assertTokenRefused(t, res, 'token_invalid', JSON.stringify(garbage))
      }
    }
  })

  t.test('a body of the wrong type: 400 invalid_request', async (t) => {
    const cases = [
      { body: { refresh: 123 } },
      { body: { refresh: ['a'] } },
      { body: { refresh: '' } },
      { rawBody: '[]' },
      { rawBody: '"token"' },
      { rawBody: '{not json' },
      { rawBody: 'refresh=abc', contentType: 'application/x-www-form-urlencoded' },
      { rawBody: 'abc', contentType: 'text/plain' }
    ]
    for (const c of cases) {
      const res = await h.request('POST', '/auth/refresh', c)
      t.equal(res.status, 400, JSON.stringify(c))
      t.equal(res.body?.code, 'invalid_request', JSON.stringify(c))
      t.match(res.headers.get('content-type'), /^application\/problem\+json/)
    }
  })
})

t.test('refresh with REFRESH_REUSE_GRACE=0: any reuse is detected', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, REFRESH_REUSE_GRACE: '0' } })

  t.test('reusing the just-rotated token revokes the whole session', async (t) => {
    const login = await h.login('alice')
    const bob = await h.login('bob')
    const first = await refresh(h, login.refresh)
    t.equal(first.status, 200)
    const rotatedAt = Date.now()
    await waitUntilPast(rotatedAt + 1, 'the clock to move past the rotation')

    assertTokenRefused(t, await refresh(h, login.refresh), 'token_reused', 'reuse after the window')
    assertTokenRefused(t, await refresh(h, first.body.refresh), 'token_revoked', 'the latest refresh token')
    assertTokenRefused(t, await h.request('GET', '/auth/sessions', { token: first.body.access }), 'token_revoked',
      'the latest access token')
    assertTokenRefused(t, await h.request('GET', '/auth/sessions', { token: login.access }), 'token_revoked',
      'the access token of the login')
    assertTokenRefused(t, await refresh(h, login.refresh), 'token_revoked', 'the reused token again')

    t.equal((await h.request('GET', '/auth/sessions', { token: bob.access })).status, 200, "bob's session is untouched")
  })
})

t.test('refresh with REFRESH_REUSE_GRACE=2: the window closes', async (t) => {
  // 2 s rather than 1: the call "within" the window must not miss it on a loaded machine.
  const h = await build(t, { env: { ...RELAXED_LIMITS, REFRESH_REUSE_GRACE: '2' } })

  t.test('within the window: 200, after it: token_reused and the session is revoked', async (t) => {
    const login = await h.login('alice')
    const first = await refresh(h, login.refresh)
    t.equal(first.status, 200)
    const rotatedBy = Date.now()

    const within = await refresh(h, login.refresh)
    // The window is 2 s from the rotation; this call follows it at once.
    t.equal(within.status, 200, 'within grace')
    t.equal(within.body.refresh, first.body.refresh, 'the same new token')

    await waitUntilPast(rotatedBy + 2000 + 1, 'the end of the grace window')
    assertTokenRefused(t, await refresh(h, login.refresh), 'token_reused', 'after the window')
    assertTokenRefused(t, await refresh(h, first.body.refresh), 'token_revoked', 'the latest refresh token')
    assertTokenRefused(t, await h.request('GET', '/auth/sessions', { token: within.body.access }), 'token_revoked',
      'the access token of the grace call')
  })
})

t.test('with the contract\'s default refresh limit (10 a minute per session)', async (t) => {
  const h = await build(t, { env: { REFRESH_SESSION_LIMIT: '10' } })

  t.test('20 parallel refreshes converge within the limit: grace replays are counted (docs/tokens-and-sessions.md)', async (t) => {
    const login = await h.login('alice')
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(h, login.refresh)))
    const granted = results.filter((r) => r.status === 200)
    t.equal(granted.length, 10, 'the rotation and 9 grace answers: 10 access tokens, the limit')
    t.same(results.filter((r) => r.status !== 200).map((r) => r.body.code), Array(10).fill('rate_limited'), 'the rest are 429')
    t.equal(new Set(granted.map((r) => r.body.refresh)).size, 1, 'one new refresh token for all')
    for (const r of results) t.equal(r.headers.get('x-ratelimit-limit'), '10', 'limit header on every answer')
  })

  t.test('reuse detection is not held back by the limit', async (t) => {
    const login = await h.login('bob')
    let current = login.refresh
    const first = current
    for (let i = 0; i < 10; i++) {
      const r = await refresh(h, current)
      t.equal(r.status, 200, `rotation ${i + 1}`)
      current = r.body.refresh
    }
    const limited = await refresh(h, current)
    t.equal(limited.status, 429, 'the 11th rotation in the minute is limited')
    t.equal(limited.body.code, 'rate_limited')
    t.ok(Number(limited.headers.get('retry-after')) > 0, 'with Retry-After')
    assertTokenRefused(t, await refresh(h, first), 'token_reused', 'an old token while limited')
    assertTokenRefused(t, await refresh(h, current), 'token_revoked', 'the session is revoked')
  })
})
