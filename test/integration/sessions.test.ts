/** Sessions: logout, logout-all, listing, revoking one, the admin route, and Redis hygiene (docs/tokens-and-sessions.md). */
import t, { type Test } from 'tap'
import { build, type Harness, type HttpResult } from '../helper.js'
import { RELAXED_LIMITS, assertTokenRefused, claimsOf, refresh } from '../helpers/auth.js'

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

interface SessionView { id: string, created_at: string, last_used_at: string, ip: string, user_agent: string, current: boolean }

function sessionsOf (h: Harness, access: string): Promise<HttpResult<{ sessions: SessionView[] }>> {
  return h.request('GET', '/auth/sessions', { token: access })
}

const sidOf = (token: string): string => claimsOf(token).sid as string

t.test('sessions', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS } })

  t.test('logout revokes the session from the very next request on', async (t) => {
    const login = await h.login('alice')
    const other = await h.login('alice')
    t.equal((await sessionsOf(h, login.access)).status, 200, 'alive before')

    const out = await h.request('POST', '/auth/logout', { token: login.access })
    t.equal(out.status, 204)
    t.equal(out.text, '', 'no body')
    t.equal(out.headers.get('cache-control'), 'no-store')

    assertTokenRefused(t, await sessionsOf(h, login.access), 'token_revoked', 'the access token')
    assertTokenRefused(t, await refresh(h, login.refresh), 'token_revoked', 'the refresh token')
    assertTokenRefused(t, await h.request('POST', '/auth/logout', { token: login.access }), 'token_revoked', 'logging out again')
    t.equal((await sessionsOf(h, other.access)).status, 200, "alice's other session is alive")
  })

  t.test('logout with a refresh token in the body', async (t) => {
    const login = await h.login('alice')
    const out = await h.request('POST', '/auth/logout', { token: login.access, body: { refresh: login.refresh } })
    t.equal(out.status, 204)
    assertTokenRefused(t, await refresh(h, login.refresh), 'token_revoked', 'the refresh token')
  })

  t.test('logout-all revokes every session of the user, and only hers', async (t) => {
    const a1 = await h.login('alice')
    const a2 = await h.login('alice')
    const bob = await h.login('bob')
    const out = await h.request('POST', '/auth/logout-all', { token: a1.access })
    t.equal(out.status, 204)
    assertTokenRefused(t, await sessionsOf(h, a1.access), 'token_revoked', 'first session: access')
    assertTokenRefused(t, await sessionsOf(h, a2.access), 'token_revoked', 'second session: access')
    assertTokenRefused(t, await refresh(h, a1.refresh), 'token_revoked', 'first session: refresh')
    assertTokenRefused(t, await refresh(h, a2.refresh), 'token_revoked', 'second session: refresh')
    t.equal((await sessionsOf(h, bob.access)).status, 200, "bob's session is alive")
    t.equal((await refresh(h, bob.refresh)).status, 200, "bob's refresh token works")
  })

  t.test('GET /auth/sessions lists the caller\'s sessions', async (t) => {
    await h.request('POST', '/auth/logout-all', { token: (await h.login('alice')).access })
    const before = Date.now()
    const first = await h.request('POST', '/auth/login', {
      body: { username: 'alice', password: 'alice-password' },
      headers: { 'user-agent': 'test-agent/1.0 (first)' }
    })
    const second = await h.request('POST', '/auth/login', {
      body: { username: 'alice', password: 'alice-password' },
      headers: { 'user-agent': 'test-agent/2.0 (second)' }
    })
    const after = Date.now()
    const bob = await h.login('bob')
    t.equal(first.status, 200)
    t.equal(second.status, 200)

    const res = await sessionsOf(h, second.body.access)
    t.equal(res.status, 200)
    t.equal(res.headers.get('cache-control'), 'no-store')
    const list = res.body.sessions
    t.equal(list.length, 2, "alice's two sessions, not bob's")
    t.same(list.map((s) => s.id).sort(), [sidOf(first.body.access), sidOf(second.body.access)].sort())
    t.notOk(list.some((s) => s.id === sidOf(bob.access)), "bob's session is not listed")

    const cur = list.find((s) => s.id === sidOf(second.body.access))
    const oth = list.find((s) => s.id === sidOf(first.body.access))
    t.equal(cur?.current, true, 'the calling session is current')
    t.equal(oth?.current, false, 'the other one is not')
    t.equal(cur?.user_agent, 'test-agent/2.0 (second)')
    t.equal(oth?.user_agent, 'test-agent/1.0 (first)')
    for (const s of list) {
      t.equal(s.ip, '127.0.0.1')
      t.match(s.created_at, ISO_DATE)
      t.match(s.last_used_at, ISO_DATE)
      const created = Date.parse(s.created_at)
      t.ok(created >= before - 1000 && created <= after + 1000, 'created_at is the login time')
      t.ok(Date.parse(s.last_used_at) >= created, 'last_used_at is not before created_at')
    }
    t.same(Object.keys(cur ?? {}).sort(), ['created_at', 'current', 'id', 'ip', 'last_used_at', 'user_agent'])

    const viaFirst = await sessionsOf(h, first.body.access)
    t.equal(viaFirst.body.sessions.find((s) => s.current)?.id, sidOf(first.body.access), 'current follows the caller')
  })

  t.test('DELETE /auth/sessions/{id} of an own other session', async (t) => {
    const keep = await h.login('alice')
    const drop = await h.login('alice')
    const res = await h.request('DELETE', `/auth/sessions/${sidOf(drop.access)}`, { token: keep.access })
    t.equal(res.status, 204)
    assertTokenRefused(t, await sessionsOf(h, drop.access), 'token_revoked', 'the revoked session: access')
    assertTokenRefused(t, await refresh(h, drop.refresh), 'token_revoked', 'the revoked session: refresh')
    t.equal((await sessionsOf(h, keep.access)).status, 200, 'the caller stays logged in')
    const list = await sessionsOf(h, keep.access)
    t.notOk(list.body.sessions.some((s) => s.id === sidOf(drop.access)), 'no longer listed')
    const again = await h.request('DELETE', `/auth/sessions/${sidOf(drop.access)}`, { token: keep.access })
    t.equal(again.status, 404, 'revoking it again: 404')
  })

  t.test("another user's session id is 404 and stays alive", async (t) => {
    const alice = await h.login('alice')
    const bob = await h.login('bob')
    const res = await h.request('DELETE', `/auth/sessions/${sidOf(bob.access)}`, { token: alice.access })
    t.equal(res.status, 404)
    t.equal(res.body.code, 'not_found')
    t.match(res.headers.get('content-type'), /^application\/problem\+json/)
    t.equal((await sessionsOf(h, bob.access)).status, 200, "bob's session works")
    t.equal((await refresh(h, bob.refresh)).status, 200, "bob's refresh works")
  })

  t.test('an unknown session id is 404', async (t) => {
    const alice = await h.login('alice')
    for (const id of ['AAAAAAAAAAAAAAAAAAAAAA', 'no-such-session', 'bad%20id', 'x'.repeat(100)]) {
      const res = await h.request('DELETE', `/auth/sessions/${id}`, { token: alice.access })
      t.equal(res.status, 404, id)
      t.equal(res.body?.code, 'not_found', id)
    }
    t.equal((await sessionsOf(h, alice.access)).status, 200, 'the caller is unaffected')
  })

  t.test('admin revokes every session of a user', async (t) => {
    const admin = await h.login('admin')
    const a1 = await h.login('alice')
    const a2 = await h.login('alice')
    const bob = await h.login('bob')
    const res = await h.request('DELETE', '/admin/users/1001/sessions', { token: admin.access })
    t.equal(res.status, 204)
    assertTokenRefused(t, await sessionsOf(h, a1.access), 'token_revoked', 'alice 1: access')
    assertTokenRefused(t, await sessionsOf(h, a2.access), 'token_revoked', 'alice 2: access')
    assertTokenRefused(t, await refresh(h, a1.refresh), 'token_revoked', 'alice 1: refresh')
    t.equal((await sessionsOf(h, bob.access)).status, 200, 'bob untouched')
    t.equal((await sessionsOf(h, admin.access)).status, 200, 'the admin untouched')
  })

  t.test('a non-admin calling the admin route gets 403', async (t) => {
    const alice = await h.login('alice')
    const bob = await h.login('bob')
    const res = await h.request('DELETE', '/admin/users/1002/sessions', { token: alice.access })
    t.equal(res.status, 403)
    t.equal(res.body.code, 'forbidden')
    t.match(res.headers.get('content-type'), /^application\/problem\+json/)
    t.equal((await sessionsOf(h, bob.access)).status, 200, "bob's session survives")
    const self = await h.request('DELETE', '/admin/users/1001/sessions', { token: alice.access })
    t.equal(self.status, 403, 'not even for herself')
    t.equal((await sessionsOf(h, alice.access)).status, 200)
  })

  t.test('no token: 401 token_missing with a bare Bearer challenge', async (t) => {
    const calls: Array<[string, string]> = [
      ['GET', '/auth/sessions'], ['POST', '/auth/logout'], ['POST', '/auth/logout-all'],
      ['DELETE', '/auth/sessions/abc'], ['DELETE', '/admin/users/1001/sessions']
    ]
    for (const [method, path] of calls) {
      const res = await h.request(method, path)
      t.equal(res.status, 401, `${method} ${path}`)
      t.equal(res.body?.code, 'token_missing', `${method} ${path}`)
      const challenge = res.headers.get('www-authenticate') ?? ''
      t.match(challenge, /^Bearer\b/, 'a Bearer challenge')
      t.notMatch(challenge, /error=/, 'without error=')
    }
    const basic = await h.request('GET', '/auth/sessions', { headers: { authorization: 'Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=' } })
    t.equal(basic.status, 401, 'another scheme is no token')
    t.equal(basic.body.code, 'token_missing')
  })

  t.test('a bad bearer token is token_invalid with error="invalid_token"', async (t) => {
    const res = await h.request('GET', '/auth/sessions', { token: 'not.a.token' })
    t.equal(res.status, 401)
    t.equal(res.body.code, 'token_invalid')
    t.match(res.headers.get('www-authenticate'), /error="invalid_token"/)
  })
})

t.test('every gateway key in Redis has a TTL', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS } })
  // A Cluster client when the suite runs against Redis Cluster (TEST_REDIS=cluster).
  const redis = h.redis.client()
  t.teardown(() => redis.quit())

  async function assertAllKeysExpire (t: Test, what: string): Promise<string[]> {
    const keys = await h.redis.keys('gw:*')
    for (const key of keys) {
      const ttl = await redis.ttl(key)
      t.ok(ttl > 0, `${what}: ${key} has a TTL (${ttl})`)
      t.ok(ttl <= h.config.jwt.refreshTtl, `${what}: ${key} lives no longer than a refresh token`)
    }
    return keys
  }

  const alice1 = await h.login('alice')
  const alice2 = await h.login('alice')
  const bob = await h.login('bob')
  const r1 = await refresh(h, alice1.refresh)
  t.equal(r1.status, 200)
  t.equal((await refresh(h, r1.body.refresh)).status, 200)
  t.equal((await refresh(h, bob.refresh)).status, 200)
  t.equal((await sessionsOf(h, alice2.access)).status, 200)
  const keysAfterLogin = await assertAllKeysExpire(t, 'after login and refresh')
  t.ok(keysAfterLogin.length >= 3, 'the sessions are in Redis under gw:')

  t.equal((await h.request('POST', '/auth/logout', { token: alice1.access })).status, 204)
  const keysAfterLogout = await assertAllKeysExpire(t, 'after logout')
  t.ok(keysAfterLogout.length > 0, 'the other sessions remain')
  t.notOk(keysAfterLogout.includes(`gw:{u:1001}:s:${sidOf(alice1.access)}`), 'the logged-out session record is gone')
  t.ok(keysAfterLogin.includes(`gw:{u:1001}:s:${sidOf(alice1.access)}`), 'it was there before')

  t.equal((await h.request('POST', '/auth/logout-all', { token: alice2.access })).status, 204)
  await assertAllKeysExpire(t, 'after logout-all')
  t.same(await h.redis.keys('gw:{u:1001}:s:*'), [], 'no session record of alice remains')
})
