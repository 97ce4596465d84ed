/**
 * Issue 8, findings on the auth routes, over real HTTP against a listening gateway on real Redis:
 * - grace replays count against REFRESH_SESSION_LIMIT (item 2);
 * - a logout never fails on `Content-Type: application/json` with no body (item 5);
 * - refused tokens count per client IP on every route that checks one (item 6);
 * - Redis never holds a usable token: the successor kept for grace replays is sealed (item 10).
 */
import t from 'tap'
import { build } from '../helper.js'
import { RELAXED_LIMITS, refresh } from '../helpers/auth.js'
import { call } from '../helpers/abuse.js'
import { rawPathRequest } from '../helpers/raw-http.js'

const JSON_NO_BODY = { 'content-type': 'application/json', 'content-length': '0' }

t.test('grace replays count against the refresh limit', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, REFRESH_SESSION_LIMIT: '3' } })
  const login = await h.login('alice')
  const first = await refresh(h, login.refresh)
  t.equal(first.status, 200, 'the rotation')
  const replays = []
  for (let i = 0; i < 6; i++) replays.push(await refresh(h, login.refresh))
  const granted = replays.filter((r) => r.status === 200)
  t.equal(granted.length, 2, 'two grace answers fit in the limit of 3 with the rotation')
  for (const r of granted) t.equal(r.body.refresh, first.body.refresh, 'a grace answer is the same new refresh token')
  for (const r of replays.filter((x) => x.status !== 200)) {
    t.equal(r.status, 429)
    t.equal(r.body.code, 'rate_limited')
    t.equal(r.body.access, undefined, 'no access token past the limit')
    t.ok(Number(r.headers.get('retry-after')) >= 1, 'with Retry-After')
  }
  const current = await refresh(h, first.body.refresh)
  t.equal(current.status, 429, 'the current token is limited too: the session minted its 3 access tokens this minute')
})

t.test('Redis never holds a usable refresh token', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS } })
  const login = await h.login('alice')
  const rotated = await refresh(h, login.refresh)
  t.equal(rotated.status, 200)
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  const dump: string[] = []
  for (const key of await h.redis.keys('*')) {
    const type = await redis.type(key)
    if (type === 'hash') dump.push(...Object.values(await redis.hgetall(key)))
    else if (type === 'string') dump.push((await redis.get(key)) ?? '')
    else if (type === 'set') dump.push(...await redis.smembers(key))
  }
  const all = dump.join('\n')
  t.ok(dump.length > 0, 'the session is in Redis')
  for (const token of [login.refresh, rotated.body.refresh, login.access, rotated.body.access]) {
    t.notOk(all.includes(token.split('.')[2]!), 'no token signature in Redis')
  }
  t.notMatch(all, /eyJ[\w-]+\.[\w-]+\.[\w-]+/, 'nothing JWT-shaped in Redis')
  // And the grace answer still converges on the same chain (it opens the seal with the token presented).
  const replay = await refresh(h, login.refresh)
  t.equal(replay.status, 200)
  t.equal(replay.body.refresh, rotated.body.refresh)
})

t.test('a logout never fails on a missing JSON body', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS } })

  t.test('POST /auth/logout', async (t) => {
    const login = await h.login('alice')
    const res = await rawPathRequest(h.url, 'POST', '/auth/logout', { token: login.access, headers: JSON_NO_BODY })
    t.equal(res.status, 204, res.text)
    t.equal((await h.request('GET', '/auth/sessions', { token: login.access })).status, 401, 'the session is gone')
    t.equal((await refresh(h, login.refresh)).status, 401, 'its refresh token too')
  })

  t.test('POST /auth/logout-all', async (t) => {
    const one = await h.login('bob')
    const two = await h.login('bob')
    const res = await rawPathRequest(h.url, 'POST', '/auth/logout-all', { token: one.access, headers: JSON_NO_BODY })
    t.equal(res.status, 204, res.text)
    t.equal((await h.request('GET', '/auth/sessions', { token: two.access })).status, 401, 'every session is gone')
  })

  t.test('DELETE /auth/sessions/{id}', async (t) => {
    const one = await h.login('admin')
    const two = await h.login('admin')
    const sessions = await h.request('GET', '/auth/sessions', { token: one.access })
    const other = sessions.body.sessions.find((s: { current: boolean }) => !s.current)
    const res = await rawPathRequest(h.url, 'DELETE', `/auth/sessions/${other.id as string}`, { token: one.access, headers: JSON_NO_BODY })
    t.equal(res.status, 204, res.text)
    t.equal((await h.request('GET', '/auth/sessions', { token: two.access })).status, 401)
  })

  t.test('a refresh body is still validated, and malformed JSON is still 400', async (t) => {
    const login = await h.login('alice')
    const bad = await rawPathRequest(h.url, 'POST', '/auth/logout',
      { token: login.access, body: '{"refresh":', headers: { 'content-type': 'application/json' } })
    t.equal(bad.status, 400)
    t.equal(bad.body.code, 'invalid_request')
    const login2 = await h.request('POST', '/auth/login', { rawBody: '', contentType: 'application/json' })
    t.equal(login2.status, 400, 'routes with a required body still refuse an empty one')
  })
})

t.test('refused tokens count per client IP on every route that checks a token', async (t) => {
  const limit = 5
  const h = await build(t, { env: { ...RELAXED_LIMITS, PUBLIC_IP_LIMIT: String(limit) } })
  const forged = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMDAxIn0.c2lnbmF0dXJl'
  const routes: Array<[string, string, string, Record<string, unknown>]> = [
    ['GET', '/auth/sessions', '127.0.0.2', { token: forged }],
    ['POST', '/auth/refresh', '127.0.0.3', { body: { refresh: forged } }],
    ['POST', '/auth/logout', '127.0.0.4', { token: forged }],
    ['POST', '/auth/logout-all', '127.0.0.5', { token: forged }],
    ['DELETE', '/auth/sessions/abc', '127.0.0.6', { token: forged }],
    ['DELETE', '/admin/users/1001/sessions', '127.0.0.7', { token: forged }]
  ]
  for (const [method, path, from, opts] of routes) {
    t.test(`${method} ${path}`, async (t) => {
      const statuses: number[] = []
      let last
      for (let i = 0; i < limit + 3; i++) {
        last = await call(h.url, method, path, { ...opts, from })
        statuses.push(last.status)
      }
      t.same(statuses.slice(0, limit), Array(limit).fill(401), 'refused while under the limit')
      t.same(statuses.slice(limit), [429, 429, 429], '429 past the limit')
      t.equal(last!.body.code, 'rate_limited')
      t.ok(Number(last!.headers['retry-after']) >= 1)
    })
  }

  t.test('a valid token from a limited IP is still 429; another IP is untouched', async (t) => {
    const login = await h.login('alice')
    const limited = await call(h.url, 'GET', '/auth/sessions', { token: forged, from: '127.0.0.2' })
    t.equal(limited.status, 429)
    const other = await call(h.url, 'GET', '/auth/sessions', { token: login.access, from: '127.0.0.9' })
    t.equal(other.status, 200, 'good tokens are not counted and other clients are not limited')
  })
})
