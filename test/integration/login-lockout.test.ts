/**
 * Login lockout (docs/abuse-protection.md, issue "abuse protection"), in the manner of django-axes:
 * consecutive failures per (normalized username, client IP) pair; a locked pair gets 429
 * `account_locked` with Retry-After until the cool-off ends, even with the right password; a
 * success resets the count; other users and other IPs are untouched; parallel guesses cannot slip
 * past the threshold. Other client IPs are real ones: sockets bound to 127.0.0.2, 127.0.0.3, ...
 */
import t, { type Test } from 'tap'
import { build, type Harness } from '../helper.js'
import { freePort, waitFor } from '../helpers/redis-server.js'
import { header, loginCall, type CallResult } from '../helpers/abuse.js'

/** Password checks that reached the users service. */
function countPasswordChecks (h: Harness): { readonly n: number } {
  const counter = { n: 0 }
  h.users.server.on('request', (req: { url?: string }) => { if (req.url === '/internal/credentials/check') counter.n++ })
  return counter
}

function assertLocked (t: Test, res: CallResult, maxRetryAfter: number, what: string): void {
  t.equal(res.status, 429, `${what}: 429`)
  t.equal(res.body?.code, 'account_locked', `${what}: account_locked`)
  t.equal(res.body?.status, 429)
  t.match(header(res, 'content-type'), /^application\/problem\+json/, `${what}: problem+json`)
  const retryAfter = Number(header(res, 'retry-after'))
  t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= maxRetryAfter,
    `${what}: Retry-After in (0, ${maxRetryAfter}] (${header(res, 'retry-after')})`)
  t.notOk('access' in (res.body ?? {}) || 'refresh' in (res.body ?? {}), `${what}: no tokens`)
}

async function failures (h: Harness, username: string, n: number, from?: string): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < n; i++) statuses.push((await loginCall(h.url, username, 'wrong-password', from !== undefined ? { from } : {})).status)
  return statuses
}

t.test('5 consecutive failures lock the (username, IP) pair, even for the right password', async (t) => {
  const h = await build(t)
  t.equal(h.config.limits.lockoutThreshold, 5, 'LOCKOUT_THRESHOLD defaults to 5')
  t.equal(h.config.limits.lockoutSeconds, 900, 'LOCKOUT_SECONDS defaults to 900')
  const checks = countPasswordChecks(h)

  for (let i = 0; i < 5; i++) {
    const res = await loginCall(h.url, 'alice', 'wrong-password')
    t.equal(res.status, 401, `failure ${i + 1}: 401`)
    t.equal(res.body?.code, 'invalid_credentials')
  }
  assertLocked(t, await loginCall(h.url, 'alice', 'alice-password'), 900, 'the right password')
  assertLocked(t, await loginCall(h.url, 'alice', 'wrong-password'), 900, 'another wrong password')
  t.equal(checks.n, 5, 'a locked pair never reaches the password check')

  const bob = await loginCall(h.url, 'bob', 'bob-password')
  t.equal(bob.status, 200, 'another user from the same IP logs in')
  const elsewhere = await loginCall(h.url, 'alice', 'alice-password', { from: '127.0.0.2' })
  t.equal(elsewhere.status, 200, 'the same user from another IP logs in')
  t.equal(elsewhere.body?.user?.id, '1001')
  assertLocked(t, await loginCall(h.url, 'alice', 'alice-password'), 900, 'still locked on the first IP')

  const stored = await h.redis.keys('gw:lockout:*')
  t.equal(stored.length, 1, 'one counter: the locked pair (the successes cleared theirs)')
  t.notOk(stored.some((k) => k.includes('alice') || k.includes('127.0.0.1')), 'no username or IP in the key')
})

t.test('usernames are case-folded and trimmed: every spelling counts for one pair', async (t) => {
  const h = await build(t)
  const spellings = [' ALICE ', 'Alice', 'alice ', '\talice', 'aLiCe']
  for (const username of spellings) {
    const res = await loginCall(h.url, username, 'wrong-password')
    t.equal(res.status, 401, JSON.stringify(username))
  }
  assertLocked(t, await loginCall(h.url, 'alice', 'alice-password'), 900, 'alice')
  assertLocked(t, await loginCall(h.url, 'ALICE', 'alice-password'), 900, 'ALICE')
  assertLocked(t, await loginCall(h.url, ' Alice', 'alice-password'), 900, "' Alice'")
  t.equal((await loginCall(h.url, 'alice', 'alice-password', { from: '127.0.0.2' })).status, 200, 'another IP is not locked')
})

t.test('a success resets the count', async (t) => {
  const h = await build(t)
  t.same(await failures(h, 'alice', 4), [401, 401, 401, 401])
  t.equal((await loginCall(h.url, 'alice', 'alice-password')).status, 200, 'success after 4 failures')
  t.same(await failures(h, 'alice', 4), [401, 401, 401, 401], '4 more failures: 8 in all, but not consecutive')
  t.equal((await loginCall(h.url, 'alice', 'alice-password')).status, 200, 'not locked')
  t.same(await failures(h, 'alice', 5), [401, 401, 401, 401, 401])
  assertLocked(t, await loginCall(h.url, 'alice', 'alice-password'), 900, 'the 5 consecutive ones lock')
})

t.test('20 parallel wrong guesses: no more than the threshold reach the password check', async (t) => {
  const h = await build(t)
  const checks = countPasswordChecks(h)
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    h.request('POST', '/auth/login', { body: { username: 'alice', password: `guess-${i}` } })))
  const statuses = answers.map((r) => r.status)
  t.ok(statuses.every((s) => s === 401 || s === 429), `only 401 and 429: ${statuses.join(',')}`)
  t.ok(checks.n <= 5, `${checks.n} password checks (threshold 5)`)
  t.equal(statuses.filter((s) => s === 401).length, checks.n, 'every 401 was a real check, every other guess was refused before it')
  t.ok(answers.filter((r) => r.status === 429).every((r) => r.body?.code === 'account_locked'), 'the others are account_locked')
  const right = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(right.status, 429, 'afterwards the pair is locked')
  t.equal(right.body?.code, 'account_locked')
  t.ok(checks.n <= 5, 'still no more than 5 checks')
})

t.test('parallel guesses from several spellings of the username share one budget', async (t) => {
  const h = await build(t)
  const checks = countPasswordChecks(h)
  const names = ['alice', 'ALICE', ' alice', 'Alice ']
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => loginCall(h.url, names[i % names.length]!, `guess-${i}`)))
  t.ok(answers.every((r) => r.status === 401 || r.status === 429))
  t.ok(checks.n <= 5, `${checks.n} password checks (threshold 5)`)
  assertLocked(t, await loginCall(h.url, 'alice', 'alice-password'), 900, 'locked')
})

t.test('the cool-off ends: LOCKOUT_SECONDS later the right password works again', async (t) => {
  // Long enough that a loaded machine still asks within the cool-off; the end is waited for, not timed.
  const h = await build(t, { env: { LOCKOUT_SECONDS: '5' } })
  t.same(await failures(h, 'alice', 5), [401, 401, 401, 401, 401])
  assertLocked(t, await loginCall(h.url, 'alice', 'alice-password'), 5, 'during the cool-off')
  await waitFor(async () => (await loginCall(h.url, 'alice', 'alice-password')).status === 200, 'the cool-off to end')
  t.pass('the right password works after the cool-off')
  t.same(await failures(h, 'alice', 1), [401], 'the count starts from zero again')
  t.equal((await loginCall(h.url, 'alice', 'alice-password')).status, 200)
})

t.test('LOCKOUT_THRESHOLD is configurable', async (t) => {
  const h = await build(t, { env: { LOCKOUT_THRESHOLD: '2', LOCKOUT_SECONDS: '120' } })
  t.same(await failures(h, 'bob', 2), [401, 401])
  assertLocked(t, await loginCall(h.url, 'bob', 'bob-password'), 120, 'after 2 failures')
})

t.test('unknown users and inactive users count like wrong passwords', async (t) => {
  const h = await build(t)
  t.same(await failures(h, 'nobody', 5), [401, 401, 401, 401, 401])
  const unknown = await loginCall(h.url, 'nobody', 'whatever')
  assertLocked(t, unknown, 900, 'an unknown user')

  const carol: number[] = []
  for (let i = 0; i < 5; i++) carol.push((await loginCall(h.url, 'carol', 'carol-password')).status)
  t.same(carol, [401, 401, 401, 401, 401], 'carol (inactive) with her right password fails')
  const locked = await loginCall(h.url, 'carol', 'carol-password')
  assertLocked(t, locked, 900, 'an inactive user')

  // A locked answer says nothing about whether the username exists.
  t.equal(locked.body.title, unknown.body.title)
  t.same(Object.keys(locked.body).sort(), Object.keys(unknown.body).sort())
})

t.test('the lock engages for a pair, never for the user globally', async (t) => {
  const h = await build(t)
  // An attacker locks alice from two addresses...
  t.same(await failures(h, 'alice', 5, '127.0.0.2'), [401, 401, 401, 401, 401])
  t.same(await failures(h, 'alice', 5, '127.0.0.3'), [401, 401, 401, 401, 401])
  assertLocked(t, await loginCall(h.url, 'alice', 'alice-password', { from: '127.0.0.2' }), 900, 'from 127.0.0.2')
  assertLocked(t, await loginCall(h.url, 'alice', 'alice-password', { from: '127.0.0.3' }), 900, 'from 127.0.0.3')
  // ...and alice herself is not locked out.
  t.equal((await loginCall(h.url, 'alice', 'alice-password')).status, 200, 'alice from her own IP')
  t.equal((await loginCall(h.url, 'alice', 'alice-password', { from: '127.0.0.4' })).status, 200, 'alice from a fourth IP')
  // 4 failures from each of many IPs never lock anybody.
  for (const from of ['127.0.0.5', '127.0.0.6', '127.0.0.7']) t.same(await failures(h, 'bob', 4, from), [401, 401, 401, 401])
  t.equal((await loginCall(h.url, 'bob', 'bob-password')).status, 200)
})

t.test('forwarded headers do not unlock a pair when TRUST_PROXY is unset', async (t) => {
  const h = await build(t)
  t.same(await failures(h, 'alice', 5), [401, 401, 401, 401, 401])
  for (const headers of [{ 'x-forwarded-for': '198.51.100.1' }, { 'x-real-ip': '198.51.100.2' }, { forwarded: 'for=198.51.100.3' }]) {
    assertLocked(t, await loginCall(h.url, 'alice', 'alice-password', { headers }), 900, JSON.stringify(headers))
  }
})

t.test('with a trusted proxy the pair is (username, forwarded client)', async (t) => {
  const h = await build(t, { env: { TRUST_PROXY: '127.0.0.1' } })
  const as = (xff: string, password: string): Promise<CallResult> =>
    loginCall(h.url, 'alice', password, { headers: { 'x-forwarded-for': xff } })
  for (let i = 0; i < 5; i++) t.equal((await as('2001:db8::1', 'wrong-password')).status, 401)
  assertLocked(t, await as('2001:db8::1', 'alice-password'), 900, 'the locked client')
  assertLocked(t, await as('2001:db8::99', 'alice-password'), 900, 'another host of the same /64')
  t.equal((await as('2001:db8:0:1::1', 'alice-password')).status, 200, 'another /64')
  t.equal((await as('198.51.100.7', 'alice-password')).status, 200, 'another forwarded client')
})

t.test('an attempt that is neither success nor failure does not count', async (t) => {
  // Replica `down` cannot reach the users service; `up` can. Both share Redis, hence the counters.
  const up = await build(t)
  const down = await build(t, { env: { USERS_URL: `http://127.0.0.1:${await freePort()}` }, redis: up.redis, keyRing: up.keyRing })
  const statuses: number[] = []
  for (let i = 0; i < 7; i++) statuses.push((await loginCall(down.url, 'alice', 'alice-password')).status)
  t.ok(statuses.every((s) => s === 502), `users service away: 502 each time (${statuses.join(',')})`)
  t.equal((await loginCall(up.url, 'alice', 'alice-password')).status, 200, 'the pair is not locked')
})

t.test('the lockout is shared by gateway replicas', async (t) => {
  const a = await build(t)
  const b = await build(t, { redis: a.redis, keyRing: a.keyRing })
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) statuses.push((await loginCall(i % 2 === 0 ? a.url : b.url, 'alice', 'wrong-password')).status)
  t.same(statuses, [401, 401, 401, 401, 401])
  assertLocked(t, await loginCall(a.url, 'alice', 'alice-password'), 900, 'replica a')
  assertLocked(t, await loginCall(b.url, 'alice', 'alice-password'), 900, 'replica b')
})
