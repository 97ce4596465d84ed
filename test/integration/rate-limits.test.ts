/**
 * Rate limits of docs/abuse-protection.md (issue "abuse protection"), against real Redis: every limit
 * class answers 429 `rate_limited` at exactly its limit and recovers when its window ends; the
 * x-ratelimit-* headers are on every answer of a limited route; forwarded headers count only from
 * trusted proxies; two gateway replicas on one Redis share every counter; and with Redis away the
 * limited routes fail closed (503), never open.
 *
 * A window is a minute, too long for a test: "recovers" is tested by expiring the counter in Redis
 * (PEXPIRE 1 ms) and polling until the limit lets requests through again.
 */
import t, { type Test } from 'tap'
import { build, type Harness } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { call, expireCounters, header, loginCall, type CallResult } from '../helpers/abuse.js'
import { startEcho } from '../helpers/echo-upstream.js'

const WINDOW_SECONDS = 60

/** x-ratelimit-* of an answer of a limited route. */
function assertLimitHeaders (t: Test, res: CallResult, limit: number, remaining: number, what: string): void {
  t.equal(header(res, 'x-ratelimit-limit'), String(limit), `${what}: x-ratelimit-limit`)
  t.equal(header(res, 'x-ratelimit-remaining'), String(remaining), `${what}: x-ratelimit-remaining`)
  const reset = Number(header(res, 'x-ratelimit-reset'))
  t.ok(Number.isInteger(reset) && reset >= 0 && reset <= WINDOW_SECONDS,
    `${what}: x-ratelimit-reset is seconds within the window (${header(res, 'x-ratelimit-reset')})`)
}

/** A 429 rate_limited problem with Retry-After and the limit headers. */
function assertRateLimited (t: Test, res: CallResult, limit: number, what: string): void {
  t.equal(res.status, 429, `${what}: 429`)
  t.equal(res.body?.code, 'rate_limited', `${what}: code rate_limited`)
  t.equal(res.body?.status, 429)
  t.match(header(res, 'content-type'), /^application\/problem\+json/, `${what}: problem+json`)
  const retryAfter = Number(header(res, 'retry-after'))
  t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= WINDOW_SECONDS,
    `${what}: Retry-After in (0, 60] (${header(res, 'retry-after')})`)
  assertLimitHeaders(t, res, limit, 0, what)
}

/** Counts the requests that reach a stub service. */
function countRequests (service: Harness['users'], url: string): { readonly n: number } {
  const counter = { n: 0 }
  service.server.on('request', (req: { url?: string }) => { if (req.url?.split('?')[0] === url) counter.n++ })
  return counter
}

t.test('login: LOGIN_IP_LIMIT attempts per client IP, whatever their outcome', async (t) => {
  const h = await build(t, { env: { LOGIN_IP_LIMIT: '3' } })
  const checks = countRequests(h.users, '/internal/credentials/check')

  const answers = [
    await loginCall(h.url, 'alice', 'alice-password'),
    await loginCall(h.url, 'alice', 'wrong'),
    await loginCall(h.url, 'bob', 'bob-password')
  ]
  t.same(answers.map((r) => r.status), [200, 401, 200], 'the first 3 attempts pass, failed or not')
  answers.forEach((r, i) => assertLimitHeaders(t, r, 3, 2 - i, `attempt ${i + 1}`))

  const fourth = await loginCall(h.url, 'bob', 'bob-password')
  assertRateLimited(t, fourth, 3, 'attempt 4, right password')
  const fifth = await loginCall(h.url, 'admin', 'admin-password')
  assertRateLimited(t, fifth, 3, 'attempt 5, another user')
  t.equal(checks.n, 3, 'limited attempts never reach the password check')

  const other = await loginCall(h.url, 'alice', 'alice-password', { from: '127.0.0.2' })
  t.equal(other.status, 200, 'another client IP has its own budget')
  assertLimitHeaders(t, other, 3, 2, 'other IP')

  t.test('recovers when the window ends', async (t) => {
    t.ok(await expireCounters(h.redis, 'gw:rl:login:127.0.0.1') === 1, 'the per-IP counter is in Redis under gw:rl:')
    await waitFor(async () => (await loginCall(h.url, 'bob', 'bob-password')).status === 200, 'login to be let through again')
    const next = await loginCall(h.url, 'alice', 'alice-password')
    t.equal(next.status, 200)
    assertLimitHeaders(t, next, 3, 1, 'new window')
  })
})

t.test('the contract defaults apply when nothing is configured', async (t) => {
  // An empty value is "unset" for loadConfig: these are the contract's defaults, not the harness's.
  const h = await build(t, { env: { LOGIN_IP_LIMIT: '', VERIFY_IP_LIMIT: '', REFRESH_SESSION_LIMIT: '', PUBLIC_IP_LIMIT: '',
    API_USER_LIMIT: '' } })
  t.same(h.config.limits, { loginPerIp: 10, lockoutThreshold: 5, lockoutSeconds: 900, refreshPerSession: 10, verifyPerIp: 60,
    apiPerUser: 600, apiPerClient: 600, publicPerIp: 60 })

  const logins: CallResult[] = []
  for (let i = 0; i < 10; i++) logins.push(await loginCall(h.url, 'alice', 'alice-password'))
  t.same(logins.map((r) => r.status), Array(10).fill(200), '10 logins a minute from one IP')
  assertRateLimited(t, await loginCall(h.url, 'alice', 'alice-password'), 10, 'the 11th login')

  const session = logins[0]!.body as { access: string, refresh: string }
  let refresh = session.refresh
  for (let i = 0; i < 10; i++) {
    const res = await call(h.url, 'POST', '/auth/refresh', { body: { refresh } })
    t.equal(res.status, 200, `refresh ${i + 1} of 10`)
    refresh = res.body.refresh
  }
  assertRateLimited(t, await call(h.url, 'POST', '/auth/refresh', { body: { refresh } }), 10, 'the 11th refresh')

  const access = logins[1]!.body.access as string
  let verified = 0
  for (let i = 0; i < 60; i++) if ((await call(h.url, 'POST', '/auth/verify', { body: { token: access } })).status === 200) verified++
  t.equal(verified, 60, '60 verify calls a minute from one IP')
  assertRateLimited(t, await call(h.url, 'POST', '/auth/verify', { body: { token: access } }), 60, 'the 61st verify')

  let notFound = 0
  for (let i = 0; i < 60; i++) if ((await call(h.url, 'GET', `/guess-${i}`)).status === 404) notFound++
  t.equal(notFound, 60, '60 unknown paths a minute from one IP')
  assertRateLimited(t, await call(h.url, 'GET', '/guess-60'), 60, 'the 61st unknown path')

  let proxied = 0
  for (let i = 0; i < 600; i++) if ((await h.request('GET', '/api/orders', { token: access })).status === 200) proxied++
  t.equal(proxied, 600, '600 proxied requests a minute per user')
  assertRateLimited(t, await call(h.url, 'GET', '/api/orders', { token: access }), 600, 'the 601st proxied request')
})

t.test('verify: VERIFY_IP_LIMIT calls per client IP', async (t) => {
  const h = await build(t, { env: { VERIFY_IP_LIMIT: '3' } })
  const alice = await h.login('alice')

  const answers = [
    await call(h.url, 'POST', '/auth/verify', { body: { token: alice.access } }),
    await call(h.url, 'POST', '/auth/verify', { body: { token: 'not-a-token' } }),
    await call(h.url, 'POST', '/auth/verify', { body: { token: alice.refresh } })
  ]
  t.same(answers.map((r) => r.status), [200, 401, 200], 'valid and invalid tokens both count')
  answers.forEach((r, i) => assertLimitHeaders(t, r, 3, 2 - i, `verify ${i + 1}`))
  assertRateLimited(t, await call(h.url, 'POST', '/auth/verify', { body: { token: alice.access } }), 3, 'verify 4')

  const other = await call(h.url, 'POST', '/auth/verify', { body: { token: alice.access }, from: '127.0.0.2' })
  t.equal(other.status, 200, 'another client IP has its own budget')
  t.equal((await h.request('POST', '/auth/login', { body: { username: 'bob', password: 'bob-password' } })).status, 200,
    'login has its own class')

  t.equal(await expireCounters(h.redis, 'gw:rl:verify:127.0.0.1'), 1)
  await waitFor(async () => (await call(h.url, 'POST', '/auth/verify', { body: { token: alice.access } })).status === 200,
    'verify to be let through again')
  t.pass('recovered after the window')
})

t.test('refresh: REFRESH_SESSION_LIMIT refreshes per session', async (t) => {
  const h = await build(t, { env: { REFRESH_SESSION_LIMIT: '3' } })
  const first = await h.login('alice')
  const second = await h.login('alice')

  let current = first.refresh
  for (let i = 0; i < 3; i++) {
    const res = await call(h.url, 'POST', '/auth/refresh', { body: { refresh: current } })
    t.equal(res.status, 200, `refresh ${i + 1} in the chain`)
    assertLimitHeaders(t, res, 3, 2 - i, `refresh ${i + 1}`)
    current = res.body.refresh
  }
  const limited = await call(h.url, 'POST', '/auth/refresh', { body: { refresh: current } })
  assertRateLimited(t, limited, 3, 'refresh 4')
  t.notOk(limited.text.includes(current), 'the 429 carries no token')

  const other = await call(h.url, 'POST', '/auth/refresh', { body: { refresh: second.refresh } })
  t.equal(other.status, 200, 'another session of the same user is not limited')
  assertLimitHeaders(t, other, 3, 2, 'other session')
  const fromElsewhere = await call(h.url, 'POST', '/auth/refresh', { body: { refresh: current }, from: '127.0.0.2' })
  t.equal(fromElsewhere.status, 429, 'the limit is per session, not per IP')

  t.test('recovers when the window ends; the limited token was not rotated away', async (t) => {
    t.equal(await expireCounters(h.redis, `gw:{u:${first.user.id}}:rl:refresh:*`), 2, 'one counter per session')
    let res: CallResult | undefined
    await waitFor(async () => {
      res = await call(h.url, 'POST', '/auth/refresh', { body: { refresh: current } })
      return res.status !== 429
    }, 'refresh to be let through again')
    t.equal(res?.status, 200, 'the token refused with 429 still rotates')
    assertLimitHeaders(t, res!, 3, 2, 'new window')
  })
})

t.test('proxied routes: API_USER_LIMIT requests per user', async (t) => {
  const h = await build(t, { env: { API_USER_LIMIT: '3' } })
  const upstream = countRequests(h.orders, '/api/orders')
  const alice = await h.login('alice')
  const aliceAgain = await h.login('alice')
  const bob = await h.login('bob')

  for (let i = 0; i < 3; i++) {
    const res = await call(h.url, 'GET', '/api/orders', { token: alice.access })
    t.equal(res.status, 200, `request ${i + 1}`)
    assertLimitHeaders(t, res, 3, 2 - i, `request ${i + 1}`)
  }
  assertRateLimited(t, await call(h.url, 'GET', '/api/orders', { token: alice.access }), 3, 'request 4')
  assertRateLimited(t, await call(h.url, 'POST', '/api/orders', { token: aliceAgain.access, body: { item: 'x' } }), 3,
    'another session of the same user')
  assertRateLimited(t, await call(h.url, 'GET', '/api/orders', { token: alice.access, from: '127.0.0.2' }), 3,
    'the same user from another IP')
  t.equal(upstream.n, 3, 'limited requests never reach the upstream')

  const other = await call(h.url, 'GET', '/api/orders', { token: bob.access })
  t.equal(other.status, 200, 'another user is unaffected')
  assertLimitHeaders(t, other, 3, 2, 'bob')

  t.equal(await expireCounters(h.redis, `gw:{u:${alice.user.id}}:rl:api`), 1)
  await waitFor(async () => (await call(h.url, 'GET', '/api/orders', { token: alice.access })).status === 200,
    'alice to be let through again')
  t.pass('recovered after the window')
})

t.test('public routes: PUBLIC_IP_LIMIT requests per client IP', async (t) => {
  // A public route forwards no assertion, which the orders stub would refuse: an echo answers instead.
  const echo = await startEcho(t)
  const h = await build(t, {
    env: { PUBLIC_IP_LIMIT: '3', ORDERS_URL: echo.url },
    routes: [{ path: '/api/orders', upstream: 'orders', public: true, limit: 'public' }]
  })
  for (let i = 0; i < 3; i++) {
    const res = await call(h.url, 'GET', '/api/orders')
    t.equal(res.status, 200, `anonymous request ${i + 1} is proxied`)
    assertLimitHeaders(t, res, 3, 2 - i, `public ${i + 1}`)
  }
  assertRateLimited(t, await call(h.url, 'GET', '/api/orders'), 3, 'public 4')
  const alice = await h.login('alice')
  assertRateLimited(t, await call(h.url, 'GET', '/api/orders', { token: alice.access }), 3, 'a token does not lift the per-IP limit')
  t.equal((await call(h.url, 'GET', '/api/orders', { from: '127.0.0.2' })).status, 200, 'another client IP has its own budget')

  t.equal(await expireCounters(h.redis, 'gw:rl:public:127.0.0.1'), 1)
  await waitFor(async () => (await call(h.url, 'GET', '/api/orders')).status === 200, 'the public route to be let through again')
  t.pass('recovered after the window')
})

t.test('404s: route guessing is limited per client IP', async (t) => {
  const h = await build(t, { env: { PUBLIC_IP_LIMIT: '3' } })
  const paths = ['/wp-admin', '/api/secret', '/.env']
  for (const [i, path] of paths.entries()) {
    const res = await call(h.url, 'GET', path)
    t.equal(res.status, 404, `${path}: 404`)
    t.equal(res.body?.code, 'not_found')
    assertLimitHeaders(t, res, 3, 2 - i, path)
  }
  assertRateLimited(t, await call(h.url, 'POST', '/wp-login.php', { body: {} }), 3, 'the 4th unknown path')
  assertRateLimited(t, await call(h.url, 'GET', '/wp-admin'), 3, 'a repeated unknown path')
  t.equal((await call(h.url, 'GET', '/wp-admin', { from: '127.0.0.2' })).status, 404, 'another client IP has its own budget')
  t.equal((await h.request('GET', '/healthz')).status, 200, 'known routes are not affected')

  t.equal(await expireCounters(h.redis, 'gw:rl:public:127.0.0.1'), 1)
  await waitFor(async () => (await call(h.url, 'GET', '/wp-admin')).status === 404, 'unknown paths to answer 404 again')
  t.pass('recovered after the window')
})

t.test('failed authentications on proxied routes count per client IP, like public routes', async (t) => {
  const h = await build(t, { env: { PUBLIC_IP_LIMIT: '3' } })
  const alice = await h.login('alice')
  for (const [i, token] of [undefined, 'not.a.token', 'still.not.valid'].entries()) {
    const res = await call(h.url, 'GET', '/api/orders', token === undefined ? {} : { token })
    t.equal(res.status, 401, `failed authentication ${i + 1}: 401`)
    assertLimitHeaders(t, res, 3, 2 - i, `failed authentication ${i + 1}`)
  }
  assertRateLimited(t, await call(h.url, 'GET', '/api/orders', { token: 'guess.number.four' }), 3, 'the 4th failed authentication')
  const ok = await call(h.url, 'GET', '/api/orders', { token: alice.access })
  t.equal(ok.status, 200, 'a valid token is counted per user, not held back by the IP\'s failures')
  t.equal((await call(h.url, 'GET', '/api/orders', { from: '127.0.0.2' })).status, 401, 'another client IP has its own budget')
})

t.test('forwarded headers', async (t) => {
  const rotations: Array<Record<string, string>> = [
    { 'x-forwarded-for': '198.51.100.1' },
    { 'x-forwarded-for': '198.51.100.2, 198.51.100.3' },
    { 'x-real-ip': '198.51.100.4' },
    { forwarded: 'for=198.51.100.5' },
    { 'x-forwarded-for': '2001:db8::1', 'x-real-ip': '2001:db8::2', forwarded: 'for="[2001:db8::3]"' }
  ]

  t.test('TRUST_PROXY unset: rotating X-Forwarded-For, X-Real-IP or Forwarded never resets the limit', async (t) => {
    const h = await build(t, { env: { LOGIN_IP_LIMIT: '3' } })
    const statuses: number[] = []
    for (const headers of rotations) statuses.push((await loginCall(h.url, 'alice', 'alice-password', { headers })).status)
    t.same(statuses, [200, 200, 200, 429, 429], 'one client IP whatever the headers say')
  })

  t.test('TRUST_PROXY naming the peer: each X-Forwarded-For client has its own budget', async (t) => {
    const h = await build(t, { env: { LOGIN_IP_LIMIT: '3', TRUST_PROXY: '127.0.0.1' } })
    const as = (xff: string): Promise<CallResult> => loginCall(h.url, 'alice', 'alice-password', { headers: { 'x-forwarded-for': xff } })
    for (let i = 0; i < 3; i++) t.equal((await as('198.51.100.1')).status, 200)
    assertRateLimited(t, await as('198.51.100.1'), 3, 'the 4th from 198.51.100.1')
    t.equal((await as('198.51.100.2')).status, 200, 'another forwarded client has its own budget')
    t.equal((await as('203.0.113.9, 198.51.100.2')).status, 200, 'the client is the rightmost untrusted address')
    t.equal((await loginCall(h.url, 'alice', 'alice-password')).status, 200, 'the proxy itself is a client of its own')
    t.equal((await loginCall(h.url, 'alice', 'alice-password',
      { headers: { 'x-forwarded-for': '198.51.100.1', 'x-real-ip': '198.51.100.77' } })).status, 429,
      'X-Real-IP is not a way around X-Forwarded-For')

    t.test('IPv6 clients are bucketed by /64, IPv4-mapped addresses are their IPv4 address', async (t) => {
      const statuses = [await as('2001:db8::1'), await as('2001:db8::2'), await as('2001:db8::ffff')].map((r) => r.status)
      t.same(statuses, [200, 200, 200])
      assertRateLimited(t, await as('2001:db8::abcd'), 3, 'the 4th from the same /64')
      t.equal((await as('2001:db8:0:1::1')).status, 200, 'the neighbouring /64 is another client')

      for (let i = 0; i < 3; i++) t.equal((await as('::ffff:10.0.0.1')).status, 200)
      assertRateLimited(t, await as('10.0.0.1'), 3, '10.0.0.1 after 3 from ::ffff:10.0.0.1')
      t.equal((await as('10.0.0.2')).status, 200)
    })
  })

  t.test('TRUST_PROXY as a list with a CIDR range that holds the peer', async (t) => {
    const h = await build(t, { env: { LOGIN_IP_LIMIT: '1', TRUST_PROXY: '10.0.0.0/8, 127.0.0.0/8' } })
    const statuses: number[] = []
    for (const xff of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.1']) {
      statuses.push((await loginCall(h.url, 'alice', 'alice-password', { headers: { 'x-forwarded-for': xff } })).status)
    }
    t.same(statuses, [200, 200, 200, 429])
  })

  t.test('TRUST_PROXY not holding the peer: forwarded headers are ignored', async (t) => {
    const h = await build(t, { env: { LOGIN_IP_LIMIT: '3', TRUST_PROXY: '10.0.0.0/8' } })
    const statuses: number[] = []
    for (const headers of rotations) statuses.push((await loginCall(h.url, 'alice', 'alice-password', { headers })).status)
    t.same(statuses, [200, 200, 200, 429, 429])
  })
})

t.test('two gateway replicas on one Redis share every counter', async (t) => {
  const env = { LOGIN_IP_LIMIT: '4', VERIFY_IP_LIMIT: '4', API_USER_LIMIT: '4', REFRESH_SESSION_LIMIT: '4', PUBLIC_IP_LIMIT: '4' }
  const a = await build(t, { env })
  const b = await build(t, { env, redis: a.redis, keyRing: a.keyRing })
  const replicas = [a, b]
  /** 6 requests alternating between the replicas: the statuses. */
  const alternate = async (send: (h: Harness, i: number) => Promise<CallResult>): Promise<number[]> => {
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) statuses.push((await send(replicas[i % 2]!, i)).status)
    return statuses
  }

  t.same(await alternate((h) => loginCall(h.url, 'alice', 'alice-password')), [200, 200, 200, 200, 429, 429], 'login per IP')
  // Both replicas now refuse this IP; the rest of the test logs in from another one.
  const alice = (await loginCall(a.url, 'alice', 'alice-password', { from: '127.0.0.2' })).body as { access: string, refresh: string }
  t.type(alice.access, 'string')

  t.same(await alternate((h) => call(h.url, 'POST', '/auth/verify', { body: { token: alice.access } })), [200, 200, 200, 200, 429, 429],
    'verify per IP')
  t.same(await alternate((h) => call(h.url, 'GET', '/api/orders', { token: alice.access })), [200, 200, 200, 200, 429, 429],
    'proxied per user')
  t.same(await alternate((h) => call(h.url, 'GET', '/nowhere')), [404, 404, 404, 404, 429, 429], '404s per IP')
  let refresh = alice.refresh
  t.same(await alternate(async (h) => {
    const res = await call(h.url, 'POST', '/auth/refresh', { body: { refresh } })
    if (res.status === 200) refresh = res.body.refresh
    return res
  }), [200, 200, 200, 200, 429, 429], 'refresh per session')
})

t.test('Redis away: limited routes fail closed with 503, then recover by themselves', async (t) => {
  const h = await build(t, { env: { LOGIN_IP_LIMIT: '3', API_USER_LIMIT: '3', REFRESH_SESSION_LIMIT: '3', VERIFY_IP_LIMIT: '3' } })
  const alice = await h.login('alice')
  await h.redis.kill()

  const answers: Array<[string, CallResult]> = []
  for (let i = 0; i < 5; i++) answers.push(['login', await loginCall(h.url, 'alice', 'alice-password')])
  answers.push(['login, wrong password', await loginCall(h.url, 'alice', 'wrong')])
  answers.push(['refresh', await call(h.url, 'POST', '/auth/refresh', { body: { refresh: alice.refresh } })])
  for (let i = 0; i < 4; i++) answers.push(['proxied', await call(h.url, 'GET', '/api/orders', { token: alice.access })])
  for (let i = 0; i < 4; i++) answers.push(['verify', await call(h.url, 'POST', '/auth/verify', { body: { token: alice.access } })])
  for (const [what, res] of answers) {
    t.equal(res.status, 503, `${what}: 503`)
    t.equal(res.body?.code, 'store_unavailable', `${what}: store_unavailable`)
    t.match(header(res, 'content-type'), /^application\/problem\+json/)
    t.notOk(res.text.includes(alice.access) || res.text.includes(alice.refresh), `${what}: no token in the answer`)
  }
  const guess = await call(h.url, 'GET', '/nowhere')
  t.ok(guess.status === 503 || guess.status === 404, `a 404 is not a 500 either (${guess.status})`)
  t.equal((await call(h.url, 'GET', '/healthz')).status, 200, '/healthz stays 200')

  await h.redis.restart()
  await waitFor(async () => (await loginCall(h.url, 'alice', 'alice-password')).status === 200, 'login to work again after Redis is back')
  const again = await loginCall(h.url, 'bob', 'bob-password')
  t.equal(again.status, 200, 'login works without a restart')
  t.ok(Number(header(again, 'x-ratelimit-remaining')) < 3, 'and is counted again')
})
