/**
 * Security events (docs/observability.md, issue "abuse protection"): one pino JSON line per event with
 * `event`, `ip`, `request_id` and `user_id` where known, and never a password, a token, a cookie
 * value or an Authorization header, also when Redis fails.
 *
 * The logger is built like production's (src/server-options.ts: level and redaction); handing
 * Fastify a plain `{ level, stream }` would drop the redaction config.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { build } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { REDACTED_PATHS } from '../../src/server-options.js'
import { call, header, type CallOptions, type CallResult } from '../helpers/abuse.js'
import { captureLogLines } from '../helpers/log-capture.js'
import { redisUp } from '../helpers/metrics.js'

interface LogLine { event?: string, ip?: string, request_id?: string, user_id?: string, [k: string]: unknown }

t.test('security events are logged with their context and without secrets', async (t) => {
  const { stream, lines: raw } = captureLogLines()
  const h = await build(t, {
    env: { LOGIN_IP_LIMIT: '12', API_USER_LIMIT: '2', REFRESH_REUSE_GRACE: '0', CORS_ORIGINS: 'http://app.example', COOKIE_SECURE: 'false',
      STUFFING_USERNAMES: '100' },
    logger: { level: 'info', stream, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }
  })

  // Everything secret the scenario sends or receives; none of it may reach the log.
  const passwords = new Set(['alice-password', 'bob-password', 'admin-password', 'carol-password'])
  const tokens = new Set<string>()
  const cookies = new Set<string>()
  /** The newest value of each cookie set (the refresh cookie, the fingerprint cookie). */
  const latest = new Map<string, string>()
  const remember = (res: CallResult): CallResult => {
    for (const k of ['access', 'refresh']) if (typeof res.body?.[k] === 'string') tokens.add(res.body[k])
    for (const c of ([] as string[]).concat(res.headers['set-cookie'] ?? [])) {
      const [name = '', ...rest] = c.split(';')[0]!.split('=')
      const value = rest.join('=')
      if (value.length > 0) { cookies.add(value); latest.set(name, value) }
    }
    return res
  }
  const send = async (rid: string, method: string, path: string, opts: CallOptions = {}): Promise<CallResult> =>
    remember(await call(h.url, method, path, { ...opts, headers: { ...opts.headers, 'x-request-id': rid } }))
  const login = (rid: string, username: string, password: string, opts: CallOptions = {}): Promise<CallResult> => {
    passwords.add(password)
    return send(rid, 'POST', '/auth/login', { ...opts, body: { username, password, ...(opts.body as object | undefined) } })
  }

  // A failed login.
  t.equal((await login('evt-failed', 'alice', 'Guess#1-for-alice')).status, 401)

  // A lockout: bob from 127.0.0.2, 5 failures, then the right password.
  for (let i = 1; i <= 5; i++) t.equal((await login(`evt-lock-${i}`, 'bob', `Guess#${i}-for-bob`, { from: '127.0.0.2' })).status, 401)
  t.equal((await login('evt-locked', 'bob', 'bob-password', { from: '127.0.0.2' })).status, 429)

  // A successful login, a refresh, and reuse of the rotated refresh token.
  const first = await login('evt-login', 'alice', 'alice-password')
  t.equal(first.status, 200)
  const refreshed = await send('evt-refresh', 'POST', '/auth/refresh', { body: { refresh: first.body.refresh } })
  t.equal(refreshed.status, 200)
  const reused = await send('evt-reuse', 'POST', '/auth/refresh', { body: { refresh: first.body.refresh } })
  t.equal(reused.status, 401)
  t.equal(reused.body.code, 'token_reused')

  // Cookie mode, then logout of that session with the access token and the cookie.
  const cookieLogin = await login('evt-login-cookie', 'alice', 'alice-password', { body: { cookie: true } })
  t.equal(cookieLogin.status, 200)
  const cookie = latest.get('refresh_token')!
  const fingerprint = [...latest].find(([name]) => name.endsWith('gw_fgp'))!
  const cookieRefresh = await send('evt-cookie-refresh', 'POST', '/auth/refresh', { headers: { cookie: `refresh_token=${cookie}; ${fingerprint[0]}=${fingerprint[1]}`, origin: 'http://app.example' } })
  t.equal(cookieRefresh.status, 200)
  const currentCookie = latest.get('refresh_token')!
  t.not(currentCookie, cookie, 'the cookie rotated')
  // A cookie-mode access token goes with its fingerprint cookie (docs/dpop.md).
  const logout = await send(
    'evt-logout',
    'POST',
    '/auth/logout',
    { token: cookieRefresh.body.access, headers: { cookie: `refresh_token=${currentCookie}; ${fingerprint[0]}=${fingerprint[1]}` } }
  )
  t.equal(logout.status, 204)

  // The per-user API limit, then logout-all.
  const third = await login('evt-login-3', 'alice', 'alice-password')
  t.same([
    (await send('evt-api-1', 'GET', '/api/orders', { token: third.body.access })).status,
    (await send('evt-api-2', 'GET', '/api/orders', { token: third.body.access })).status,
    (await send('evt-api-limited', 'GET', '/api/orders', { token: third.body.access })).status
  ], [200, 200, 429])
  t.equal((await send('evt-logout-all', 'POST', '/auth/logout-all', { token: third.body.access })).status, 204)

  // Admin revocation of bob's sessions.
  const bob = await login('evt-login-bob', 'bob', 'bob-password')
  const admin = await login('evt-login-admin', 'admin', 'admin-password')
  t.equal((await send('evt-admin', 'DELETE', `/admin/users/${bob.body.user.id}/sessions`, { token: admin.body.access })).status, 204)

  // A rate-limited login: 12 attempts from 127.0.0.3 (different usernames: no lockout), then one more.
  for (let i = 0; i < 12; i++) t.equal((await login(`evt-ip-${i}`, `user${i}`, `Guess#${i}-from-3`, { from: '127.0.0.3' })).status, 401)
  t.equal((await login('evt-login-limited', 'alice', 'alice-password', { from: '127.0.0.3' })).status, 429)

  // A body that is not JSON, with a password in it.
  const malformed = await h.request('POST', '/auth/login',
    { rawBody: '{"username":"alice","password":"alice-password"', headers: { 'x-request-id': 'evt-malformed' } })
  t.equal(malformed.status, 400)

  // Redis refuses writes (maxmemory reached): refresh fails closed, and its error is logged.
  const beforeOom = await login('evt-login-oom', 'alice', 'alice-password')
  const admin6379 = new Redis(h.redis.url)
  await admin6379.config('SET', 'maxmemory', '1')
  const oomRefresh = await send('evt-oom-refresh', 'POST', '/auth/refresh', { body: { refresh: beforeOom.body.refresh } })
  t.equal(oomRefresh.status, 503, 'refresh with Redis refusing writes: 503')
  t.equal(oomRefresh.body.code, 'store_unavailable')
  await admin6379.config('SET', 'maxmemory', '0')
  admin6379.disconnect()

  // Redis away.
  const beforeOutage = await login('evt-login-outage', 'alice', 'alice-password')
  await h.redis.kill()
  t.equal((await send('evt-outage-refresh', 'POST', '/auth/refresh', { body: { refresh: beforeOutage.body.refresh } })).status, 503)
  t.equal((await login('evt-outage-login', 'alice', 'alice-password')).status, 503)
  t.equal((await send('evt-outage-api', 'GET', '/api/orders', { token: beforeOutage.body.access })).status, 503)
  await h.redis.restart()
  await waitFor(() => redisUp(h.url), 'Redis to be back')

  const lines: LogLine[] = raw.map((l) => JSON.parse(l) as LogLine)
  const events = lines.filter((l) => typeof l.event === 'string')
  const find = (event: string, rid: string): LogLine | undefined => events.find((l) => l.event === event && l.request_id === rid)

  t.test('each event has event, ip, request_id and user_id where known', async (t) => {
    const expected: Array<[event: string, rid: string, ip: string, userId?: string]> = [
      ['login_failed', 'evt-failed', '127.0.0.1'],
      ['login_failed', 'evt-lock-5', '127.0.0.2'],
      ['account_locked', 'evt-lock-5', '127.0.0.2'],
      ['account_locked', 'evt-locked', '127.0.0.2'],
      ['login_succeeded', 'evt-login', '127.0.0.1', first.body.user.id],
      ['token_refreshed', 'evt-refresh', '127.0.0.1', first.body.user.id],
      ['token_reuse_detected', 'evt-reuse', '127.0.0.1', first.body.user.id],
      ['session_revoked', 'evt-reuse', '127.0.0.1', first.body.user.id],
      ['token_refreshed', 'evt-cookie-refresh', '127.0.0.1', first.body.user.id],
      ['session_revoked', 'evt-logout', '127.0.0.1', first.body.user.id],
      ['rate_limited', 'evt-api-limited', '127.0.0.1', first.body.user.id],
      ['logout_all', 'evt-logout-all', '127.0.0.1', first.body.user.id],
      ['session_revoked', 'evt-admin', '127.0.0.1', bob.body.user.id],
      ['rate_limited', 'evt-login-limited', '127.0.0.3']
    ]
    for (const [event, rid, ip, userId] of expected) {
      const line = find(event, rid)
      t.ok(line, `${event} logged for ${rid}`)
      if (line === undefined) continue
      t.equal(line.ip, ip, `${event} ${rid}: ip`)
      t.equal(line.request_id, rid, `${event} ${rid}: request_id`)
      if (userId !== undefined) t.equal(line.user_id, userId, `${event} ${rid}: user_id`)
    }
    t.equal(find('login_failed', 'evt-locked'), undefined, 'a locked attempt is not a password failure')
    t.equal(events.filter((l) => l.event === 'account_locked' && l.ip === '127.0.0.2').length, 2, 'the lock and the refused attempt')
    t.ok(events.every((l) => typeof l.ip === 'string' && typeof l.request_id === 'string' && l.level === 30),
      'every event line is info with ip and request_id')
    t.equal(find('session_revoked', 'evt-admin')?.by, admin.body.user.id, 'the admin revocation says who did it')
  })

  t.test('no line carries a password, a token, a cookie or an Authorization value', async (t) => {
    t.ok(tokens.size >= 10, `${tokens.size} tokens issued`)
    t.ok(cookies.size >= 2, `${cookies.size} cookie values`)
    const everything = raw.join('\n')
    for (const p of passwords) t.notOk(everything.includes(p), `password ${p} not logged`)
    for (const [i, token] of [...tokens].entries()) {
      const signature = token.split('.')[2] ?? token
      t.notOk(everything.includes(token) || everything.includes(signature), `token ${i + 1} not logged`)
    }
    for (const [i, c] of [...cookies].entries()) t.notOk(everything.includes(c), `cookie value ${i + 1} not logged`)
    t.notOk(/bearer /i.test(everything), 'no Bearer value')
    // Tokens the client never saw count too, e.g. the next refresh token of a rotation that failed.
    const jwtShaped = raw.filter((l) => /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}/.test(l))
      .map((l) => { const o = JSON.parse(l) as LogLine; return `${String(o.request_id)}: ${String(o.msg)}` })
    t.same(jwtShaped, [], 'no line holds anything shaped like a JWT')
    const leaking = raw.filter((l) => [...tokens].some((tok) => l.includes(tok.split('.')[2]!)))
    t.same(leaking.map((l) => { const o = JSON.parse(l) as LogLine; return `${String(o.request_id)} ${String(o.msg)}` }), [],
      'lines with a token (request and message)')
  })
  t.equal(header(oomRefresh, 'content-type').startsWith('application/problem+json'), true)
})
