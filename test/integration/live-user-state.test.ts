/**
 * Live user state (docs/live-user-state.md, issue "live user state"), on real Redis with two gateway replicas
 * that share it and one users service: a change made through one replica holds on the other from
 * the very next request (deactivation, roles, password); a change made in the users service
 * directly holds within USER_STATE_TTL, read once per TTL across replicas; and with the users
 * service down the last known state holds for at most one more TTL, then 503.
 *
 * Nothing here waits for a fixed time: TTL effects are polled for.
 */
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { createLocalJWKSet, decodeJwt } from 'jose'
import { build, httpRequest, type Harness, type BuildOptions, type HttpResult } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { assertTokenRefused, claimsOf, refresh } from '../helpers/auth.js'
import { startEcho } from '../helpers/echo-upstream.js'
import { buildUsersService, directoryOf } from '../../services/users/app.js'
import { sessionKeys } from '../../src/sessions/session-store.js'
import type { Redis } from 'ioredis'
import { captureLogLines } from '../helpers/log-capture.js'

interface LogLine { event?: string, user_id?: string, [k: string]: unknown }

/** A pino destination that keeps the parsed lines. */
function logCapture (): { stream: Writable, readonly lines: LogLine[] } {
  const raw = captureLogLines()
  return { stream: raw.stream, get lines () { return raw.lines.map((l) => JSON.parse(l) as LogLine) } }
}

/** Two gateway replicas on one Redis, one key ring and one users service (replica a's). */
async function replicas (t: Test, env: Record<string, string>, opts: Pick<BuildOptions, 'logger'> = {}): Promise<[Harness, Harness]> {
  const a = await build(t, { env, ...opts })
  const b = await build(t, { env: { ...env, USERS_URL: a.config.upstreams.users }, redis: a.redis, keyRing: a.keyRing })
  return [a, b]
}

/** Changes through the gateway must not need the TTL: it is far away in these tests. */
const LONG_TTL = { USER_STATE_TTL: '3600' }

t.test('deactivation through one replica: the next request on the other is refused', async (t) => {
  const log = logCapture()
  const [a, b] = await replicas(t, LONG_TTL, { logger: { level: 'info', stream: log.stream } })
  const alice = await b.login('alice')
  const aliceOther = await a.login('alice')
  const admin = await a.login('admin')
  t.equal((await b.request('GET', '/api/orders', { token: alice.access })).status, 200, 'alice works before')

  const res = await a.request('PATCH', '/api/users/1001', { token: admin.access, body: { active: false } })
  t.equal(res.status, 200, 'PATCH 200')
  t.same(res.body, { id: '1001', username: 'alice', roles: ['user'], active: false }, 'the changed user')
  t.equal(res.headers.get('x-user-state-changed'), null, 'the change mark never reaches the client')

  assertTokenRefused(t, await b.request('GET', '/api/orders', { token: alice.access }), 'token_revoked',
    'next request on the other replica')
  assertTokenRefused(t, await b.request('GET', '/api/users/me', { token: aliceOther.access }), 'token_revoked', 'her other session')
  assertTokenRefused(t, await b.request('GET', '/auth/sessions', { token: alice.access }), 'token_revoked', 'gateway routes too')
  assertTokenRefused(t, await refresh(b, alice.refresh), 'token_revoked', 'her refresh token')
  t.equal((await b.request('POST', '/auth/verify', { body: { token: alice.access } })).body?.code, 'token_revoked', 'verify says revoked')
  t.same(await a.redis.keys(`${sessionKeys.recordPrefix('1001')}*`), [], 'no session record of alice remains')
  t.equal((await b.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })).body?.code,
    'invalid_credentials', 'login refused')
  t.equal((await b.request('GET', '/api/orders', { token: admin.access })).status, 200, 'other users are untouched')

  const event = log.lines.find((l) => l.event === 'user_deactivated')
  t.equal(event?.user_id, '1001', 'user_deactivated event with user_id')
  t.equal(event?.sessions, 2, 'both sessions counted as revoked')

  // Reactivated: she logs in again; the revoked tokens stay revoked.
  t.equal((await a.request('PATCH', '/api/users/1001', { token: admin.access, body: { active: true } })).status, 200, 'reactivated')
  const again = await b.login('alice')
  t.equal((await a.request('GET', '/api/orders', { token: again.access })).status, 200, 'a new login works')
  assertTokenRefused(t, await a.request('GET', '/api/orders', { token: alice.access }), 'token_revoked', 'old token after reactivation')
})

t.test('a role change through one replica: route authorization, X-User-Roles, the assertion and new tokens', async (t) => {
  const echo = await startEcho(t)
  const env = { ...LONG_TTL, ORDERS_URL: echo.url }
  const log = logCapture()
  const [a, b] = await replicas(t, env, { logger: { level: 'info', stream: log.stream } })
  const alice = await b.login('alice')
  const admin = await a.login('admin')
  t.equal((await b.request('GET', '/api/users', { token: alice.access })).status, 403, 'alice is no admin')
  t.equal((await b.request('GET', '/api/orders', { token: alice.access })).status, 200)
  t.equal(echo.requests.at(-1)?.headers['x-user-roles'], 'user', 'X-User-Roles before')

  const promoted = await a.request('PATCH', '/api/users/1001', { token: admin.access, body: { roles: ['user', 'admin'] } })
  t.equal(promoted.status, 200)
  t.same(promoted.body?.roles, ['user', 'admin'])
  t.equal((await b.request('GET', '/api/users', { token: alice.access })).status, 200,
    'her token from before the change reaches /api/users')
  t.equal((await b.request('GET', '/api/orders', { token: alice.access })).status, 200)
  const seen = echo.requests.at(-1)!
  t.equal(seen.headers['x-user-roles'], 'user,admin', 'X-User-Roles has the new roles')
  t.same(decodeJwt(seen.headers['x-gateway-assertion'] as string).roles, ['user', 'admin'], 'so has the assertion (no stale cached one)')
  const rotated = await refresh(b, alice.refresh)
  t.equal(rotated.status, 200)
  t.same(claimsOf(rotated.body.access).roles, ['user', 'admin'], 'a token minted at refresh carries the new roles')
  t.ok(log.lines.some((l) => l.event === 'user_roles_changed' && l.user_id === '1001'), 'user_roles_changed event')

  // An admin demoted (here: by themselves): the next /api/users call with the old token is 403.
  t.equal((await a.request('PATCH', '/api/users/1003', { token: admin.access, body: { roles: ['user'] } })).status, 200, 'admin demoted')
  const refused = await b.request('GET', '/api/users', { token: admin.access })
  t.equal(refused.status, 403, 'the old admin token gets 403 on the other replica')
  t.equal(refused.body?.code, 'forbidden')
  t.equal((await b.request('DELETE', '/admin/users/1002/sessions', { token: admin.access })).status, 403,
    'and on the gateway\'s own admin route')
  t.equal((await a.request('PATCH', '/api/users/1003', { token: admin.access, body: { roles: ['admin'] } })).status, 403,
    'no way back with that token')
  t.equal((await b.request('GET', '/api/users', { token: rotated.body.access })).status, 200, 'alice, now admin, still gets in')
})

t.test('PATCH /api/users/{id} and POST /api/users/me/password: validation, 404, who may call them', async (t) => {
  const h = await build(t, { env: LONG_TTL })
  const admin = await h.login('admin')
  const bob = await h.login('bob')
  const bad: Array<[unknown, string]> = [
    [{}, 'empty body'],
    [{ active: 'no' }, 'active not a boolean'],
    [{ roles: 'admin' }, 'roles not a list'],
    [{ roles: [''] }, 'empty role'],
    [{ roles: ['a,b'] }, 'a comma in a role'],
    [{ roles: ['user', 'user'] }, 'repeated role'],
    [{ active: true, username: 'x' }, 'unknown field'],
    [[true], 'an array']
  ]
  for (const [body, what] of bad) {
    const res = await h.request('PATCH', '/api/users/1002', { token: admin.access, body })
    t.equal(res.status, 400, `${what}: 400`)
    t.equal(res.body?.code, 'invalid_request', `${what}: invalid_request`)
    t.type(res.body?.detail, 'string', `${what}: says what is wrong`)
  }
  t.equal((await h.request('PATCH', '/api/users/9999', { token: admin.access, body: { active: false } })).status, 404, 'unknown id: 404')
  t.equal((await h.request('PATCH', '/api/users/1001', { token: bob.access, body: { active: false } })).status, 403, 'not an admin: 403')
  t.equal(directoryOf(h.users).get('1001')?.active, true, 'nothing changed by the refused calls')

  t.equal((await h.request('GET', '/api/users/me/password', { token: bob.access })).status, 404, 'only POST is routed')
  t.equal((await h.request('POST', '/api/users/me/password',
    { body: { current_password: 'bob-password', new_password: 'long-enough-1' } })).status, 401, 'a token is needed')
  const short = await h.request('POST', '/api/users/me/password',
    { token: bob.access, body: { current_password: 'bob-password', new_password: 'short' } })
  t.equal(short.status, 400, 'too short a new password')
  t.match(short.body?.detail, /at least 10/)
  t.equal((await h.request('POST', '/api/users/me/password', { token: bob.access, body: { new_password: 'long-enough-1' } })).status, 400,
    'current password missing')
  t.equal((await h.request('GET', '/api/users/me', { token: bob.access })).status, 200, 'bob still in: validation errors revoke nothing')
})

t.test('a password change revokes every other session; a wrong current password counts like a failed login', async (t) => {
  const log = logCapture()
  const [a, b] = await replicas(t, { ...LONG_TTL, LOCKOUT_THRESHOLD: '3' }, { logger: { level: 'info', stream: log.stream } })
  const here = await a.login('alice')
  const elsewhere = await b.login('alice')
  const bob = await b.login('bob')
  const change = (h: Harness, token: string, current: string, next: string) =>
    h.request('POST', '/api/users/me/password', { token, body: { current_password: current, new_password: next } })

  const wrong = await change(a, here.access, 'not-her-password', 'alice-new-password')
  t.equal(wrong.status, 400, 'wrong current password: 400')
  t.equal(wrong.body?.code, 'invalid_current_password')
  t.equal(wrong.headers.get('x-user-password-rejected'), null, 'the mark never reaches the client')
  t.equal((await b.request('GET', '/api/orders', { token: elsewhere.access })).status, 200, 'nothing revoked by a wrong password')

  const done = await change(a, here.access, 'alice-password', 'alice-new-password')
  t.equal(done.status, 204, 'password changed: 204')
  t.equal(done.headers.get('x-user-password-changed'), null, 'the mark never reaches the client')
  assertTokenRefused(t, await b.request('GET', '/api/orders', { token: elsewhere.access }), 'token_revoked',
    'the other session, next request, other replica')
  assertTokenRefused(t, await refresh(b, elsewhere.refresh), 'token_revoked', 'the other session\'s refresh token')
  t.equal((await b.request('GET', '/api/orders', { token: here.access })).status, 200, 'the session that changed it stays')
  t.equal((await refresh(b, here.refresh)).status, 200, 'and can refresh')
  t.equal((await b.request('GET', '/api/orders', { token: bob.access })).status, 200, 'other users are untouched')
  t.equal((await a.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })).status, 401,
    'old password refused')
  t.equal((await a.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-new-password' } })).status, 200,
    'new password works')
  const event = log.lines.find((l) => l.event === 'password_changed')
  t.equal(event?.user_id, '1001', 'password_changed event')
  t.equal(event?.sessions_revoked, 1, 'one other session revoked')

  // Lockout: the login and the password check share the (username, IP) count (threshold 3). The
  // successful change and login above cleared it; three wrong current passwords lock the pair.
  const fresh = await a.login('alice', 'alice-new-password')
  for (let i = 1; i <= 3; i++) t.equal((await change(b, fresh.access, `guess-${i}-for-alice`, 'whatever-new-1')).status, 400,
    `wrong guess ${i}: 400`)
  const locked = await change(a, fresh.access, 'alice-new-password', 'whatever-new-1')
  t.equal(locked.status, 429, 'then locked, even with the right password')
  t.equal(locked.body?.code, 'account_locked')
  t.ok(Number(locked.headers.get('retry-after')) > 0, 'with Retry-After')
  const login = await a.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-new-password' } })
  t.equal(login.body?.code, 'account_locked', 'and so is login from that IP')
  t.ok(log.lines.some((l) => l.event === 'login_failed' && l.reason === 'wrong_current_password'),
    'login_failed events for wrong current passwords')
  t.match(directoryOf(a.users).get('1001')?.passwordHash, /^\$argon2id\$v=19\$m=19456,(t=2,p=1|p=1,t=2)\$/,
    'stored as argon2id with the demo parameters')
})

t.test('changes made in the users service directly hold within USER_STATE_TTL on every replica', async (t) => {
  const [a, b] = await replicas(t, { USER_STATE_TTL: '1' })
  const directory = directoryOf(a.users)
  const admin = await a.login('admin')
  const alice = await b.login('alice')
  let turn = 0
  const either = (): Harness => (turn++ % 2 === 0 ? a : b)

  directory.update('1003', { roles: ['user'] })
  await waitFor(async () => (await either().request('GET', '/api/users', { token: admin.access })).status === 403, 'the demotion to hold')
  t.equal((await a.request('GET', '/api/users', { token: admin.access })).status, 403, 'demoted on replica a')
  t.equal((await b.request('GET', '/api/users', { token: admin.access })).status, 403, 'demoted on replica b')

  directory.update('1001', { active: false })
  await waitFor(async () => (await either().request('GET', '/api/orders', { token: alice.access })).status === 401,
    'the deactivation to hold')
  assertTokenRefused(t, await a.request('GET', '/api/orders', { token: alice.access }), 'token_revoked', 'deactivated: replica a')
  assertTokenRefused(t, await b.request('GET', '/api/orders', { token: alice.access }), 'token_revoked', 'deactivated: replica b')
  t.same(await a.redis.keys(`${sessionKeys.recordPrefix('1001')}*`), [], 'her sessions are revoked')
})

t.test('a due refresh is single-flight across replicas', async (t) => {
  // TTL 60 s: the state's age is set in Redis, so the test does not wait for it.
  const [a, b] = await replicas(t, { USER_STATE_TTL: '60' })
  const directory = directoryOf(a.users)
  const bob = await a.login('bob')
  const redis = a.redis.client()
  t.teardown(() => redis.quit())
  const burst = async (): Promise<number[]> => Promise.all(Array.from({ length: 16 }, (_, i) =>
    httpRequest((i % 2 === 0 ? a : b).url, 'GET', '/api/orders', { token: bob.access }).then((r) => r.status)))

  const before = directory.lookups('1002')
  t.same(await burst(), Array(16).fill(200), 'a fresh state: every request answered')
  t.equal(directory.lookups('1002'), before, 'and the users service not asked')

  // Due (older than half the TTL, younger than the TTL): the last known state serves, one replica reads it again.
  await redis.hset(sessionKeys.state('1002'), 'checked', String(Date.now() - 40_000))
  t.same(await burst(), Array(16).fill(200), 'refresh due: every request answered from the last known state')
  await waitFor(() => directory.lookups('1002') > before, 'the background refresh')
  await waitFor(async () => Number(await redis.hget(sessionKeys.state('1002'), 'checked')) > Date.now() - 10_000,
    'the refreshed state recorded')
  t.equal(directory.lookups('1002'), before + 1, 'one lookup for 16 concurrent requests on two replicas')

  // Too old (past the TTL): the requests wait for one fresh read.
  await redis.hset(sessionKeys.state('1002'), 'checked', String(Date.now() - 70_000))
  await redis.del(sessionKeys.stateLease('1002'))
  const statuses = await burst()
  t.ok(statuses.every((s) => s === 200 || s === 503) && statuses.includes(200),
    `too old: answered after a fresh read (${statuses.join(',')})`)
  t.equal(directory.lookups('1002'), before + 2, 'again one lookup for all of them')
})

t.test('a direct change is seen by the first request once the state is older than USER_STATE_TTL, on every replica', async (t) => {
  // TTL 60 s: the state's age is set in Redis, so the test does not wait for it.
  const [a, b] = await replicas(t, { USER_STATE_TTL: '60' })
  const directory = directoryOf(a.users)
  const admin = await a.login('admin')
  const alice = await b.login('alice')
  const redis = a.redis.client()
  t.teardown(() => redis.quit())

  directory.update('1003', { roles: ['user'] })
  directory.update('1001', { active: false })
  // Just past the TTL (younger than two TTLs): no request may be answered from the old state.
  await redis.hset(sessionKeys.state('1003'), 'checked', String(Date.now() - 61_000))
  await redis.hset(sessionKeys.state('1001'), 'checked', String(Date.now() - 61_000))
  t.equal((await b.request('GET', '/api/users', { token: admin.access })).status, 403, 'the demotion holds at the first request')
  t.equal((await a.request('GET', '/api/users', { token: admin.access })).status, 403, 'and on the other replica')
  assertTokenRefused(t, await a.request('GET', '/api/orders', { token: alice.access }), 'token_revoked',
    'the deactivation holds at the first request')
  assertTokenRefused(t, await b.request('GET', '/api/orders', { token: alice.access }), 'token_revoked', 'and on the other replica')
})

t.test('users service down: the last known state holds until USER_STATE_TTL, then 503; back, service resumes', async (t) => {
  const h = await build(t, { env: { USER_STATE_TTL: '1' } })
  const alice = await h.login('alice')
  t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 200)
  const port = Number(new URL(h.config.upstreams.users).port)
  await h.users.close()

  const seen = new Set<number>()
  let last: HttpResult | undefined
  await waitFor(async () => {
    last = await h.request('GET', '/api/orders', { token: alice.access })
    seen.add(last.status)
    return last.status === 503
  }, 'a 503 once the last known state is too old')
  t.equal(last?.body?.code, 'user_state_unavailable', '503 user_state_unavailable')
  t.match(last?.headers.get('content-type'), /^application\/problem\+json/)
  t.ok(Number(last?.headers.get('retry-after')) > 0, 'with Retry-After')
  t.same([...seen].filter((s) => s !== 200 && s !== 503), [], 'meanwhile only 200 (last known state) or 503')
  t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 503, 'and it stays 503 (no stale roles trusted)')

  // The users service is back on its port: the next lease reads the state again.
  const users = await buildUsersService({ keys: createLocalJWKSet(h.keyRing.publicJwks), issuer: h.config.jwt.issuer })
  await users.listen({ port, host: '127.0.0.1' })
  t.teardown(() => users.close())
  await waitFor(async () => (await h.request('GET', '/api/orders', { token: alice.access })).status === 200, 'service to resume')
  t.pass('resumed without a restart')
})

// MONITOR sees one node: on a Cluster (test/cluster/) the commands are spread over three.
const onCluster = process.env.TEST_REDIS === 'cluster'
t.test('the authenticated hot path stays one Redis round trip (one EVALSHA) per request',
  { skip: onCluster ? 'counted with MONITOR on a single Redis only' : false }, async (t) => {
  const h = await build(t, { env: LONG_TTL })
  const alice = await h.login('alice')
  const admin = await h.login('admin')
  // Warm-up: the scripts are loaded once.
  t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 200)
  // MONITOR shows the commands clients send; those a script runs inside Redis come as source 'lua'.
  const redis = h.redis.client() as Redis
  const monitor = await redis.monitor()
  t.teardown(() => { monitor.disconnect(); redis.disconnect() })
  const sent: string[] = []
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') sent.push(String(args[0]).toLowerCase())
  })
  for (let i = 0; i < 5; i++) {
    t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 200)
    t.equal((await h.request('GET', '/api/users', { token: admin.access })).status, 200)
    t.equal((await h.request('GET', '/auth/sessions', { token: alice.access })).status, 200)
  }
  // 10 proxied requests: one script each; the 5 session listings: one for the check and one for the listing.
  // With the session cache (docs/session-cache.md) the checks come from it: fewer scripts, never
  // more, and the invalidation connection's heartbeat PINGs. A marker ends the monitored stretch.
  await redis.echo('end of requests')
  await waitFor(() => sent.includes('echo'), 'the monitored commands')
  const requests = sent.slice(0, sent.indexOf('echo'))
  const scripts = requests.filter((c) => c === 'evalsha' || c === 'eval').length
  if (process.env.SESSION_CACHE === 'off') t.equal(scripts, 20, 'one script per proxied request (two per session listing)')
  else t.ok(scripts >= 5 && scripts <= 20, `at most one script per proxied request (two per session listing): ${scripts}`)
  const others = requests.filter((c) => c !== 'evalsha' && c !== 'eval' && (process.env.SESSION_CACHE === 'off' || c !== 'ping'))
  t.same(others, [], 'and no other command')
})
