/**
 * The gateway tells a wrong password from a failing identity backend (docs/identity-backend.md): only a 401
 * with code `invalid_credentials` is a failed login. A backend that refuses the gateway's assertion
 * (here: the real users stub expecting another issuer), answers anything undocumented, or does not
 * answer in time gives 502/504 with a security event, and never counts towards the lockout.
 */
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Writable } from 'node:stream'
import { createLocalJWKSet } from 'jose'
import { build, type Harness } from '../helper.js'
import { loginCall } from '../helpers/abuse.js'
import { captureLogLines } from '../helpers/log-capture.js'
import { buildUsersService } from '../../services/users/app.js'
import { REDACTED_PATHS } from '../../src/server-options.js'

interface LogLine { event?: string, request_id?: string, ip?: string, call?: string, reason?: string, backend_status?: number }

function logCapture (): { stream: Writable, events: () => LogLine[] } {
  const { stream, lines } = captureLogLines()
  return { stream, events: () => lines.map((l) => JSON.parse(l) as LogLine).filter((l) => typeof l.event === 'string') }
}

/** A scripted identity backend: each request is answered by `answer`, or never when it returns 'hang'. */
async function fakeBackend (t: { teardown: (fn: () => unknown) => void },
  answer: (req: IncomingMessage, res: ServerResponse) => void | 'hang'): Promise<string> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => { answer(req, res) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const address = server.address() as { port: number }
  return `http://127.0.0.1:${address.port}`
}

const json = (res: ServerResponse, status: number, body: unknown, type = 'application/json'): void => {
  res.writeHead(status, { 'content-type': type }).end(typeof body === 'string' ? body : JSON.stringify(body))
}

t.test('a backend that refuses the assertion (another JWT_ISSUER): 502, an event, and no lockout count', async (t) => {
  const logs = logCapture()
  const good = await build(t)
  // The real users stub, trusting the gateway's keys but expecting another issuer.
  const strict = await buildUsersService({ keys: createLocalJWKSet(good.keyRing.publicJwks), issuer: 'some-other-gateway' })
  t.teardown(() => strict.close())
  const strictUrl = await strict.listen({ port: 0, host: '127.0.0.1' })
  const refused = await build(t, {
    env: { USERS_URL: strictUrl, LOG_LEVEL: 'info' },
    redis: good.redis,
    keyRing: good.keyRing,
    logger: { level: 'info', stream: logs.stream, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }
  })

  // More attempts than LOCKOUT_THRESHOLD (5), with the right password and with a wrong one.
  for (let i = 0; i < 7; i++) {
    const res = await loginCall(refused.url, 'alice', i % 2 === 0 ? 'alice-password' : 'wrong-password',
      { headers: { 'x-request-id': `refused-${i}` } })
    t.equal(res.status, 502, `attempt ${i}: 502`)
    t.equal(res.body.code, 'upstream_unavailable')
    t.notMatch(res.text, /issuer|assertion|some-other-gateway/, 'the cause stays in the log')
  }
  t.equal((await loginCall(good.url, 'alice', 'alice-password')).status, 200,
    'the pair was never counted: alice logs in through a working replica')

  const events = logs.events()
  const refusedEvent = events.find((e) => e.event === 'identity_backend_refused' && e.request_id === 'refused-0')
  t.ok(refusedEvent, 'identity_backend_refused is logged for the request')
  t.equal(refusedEvent?.call, 'credentials:check')
  t.equal(refusedEvent?.backend_status, 401)
  t.equal(refusedEvent?.ip, '127.0.0.1')
  t.notOk(events.some((e) => e.event === 'login_failed' || e.event === 'account_locked'), 'no failed login and no lockout event')
})

t.test('only the documented answers mean something', async (t) => {
  let mode = 'wrong-password'
  const backend = await fakeBackend(t, (req, res) => {
    if (req.url === '/healthz') return json(res, 200, { status: 'ok' })
    switch (mode) {
      case 'wrong-password': return json(res, 401, { title: 'Invalid credentials', status: 401, code: 'invalid_credentials' },
        'application/problem+json')
      case '401-other': return json(res, 401, { code: 'gateway_assertion_required' })
      case '401-bare': return json(res, 401, 'Unauthorized', 'text/plain')
      case '403': return json(res, 403, { code: 'forbidden' })
      case '500': return json(res, 500, { code: 'invalid_credentials' })
      case '400': return json(res, 400, { code: 'invalid_request' })
      case 'redirect': res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end(); return
      case 'numeric-id': return json(res, 200, { id: 1001, username: 'alice', roles: ['user'] })
      case 'no-roles': return json(res, 200, { id: '1001', username: 'alice' })
      case 'not-json': return json(res, 200, '<html>welcome</html>', 'text/html')
      case 'ok': return json(res, 200, { id: '1001', username: 'alice', roles: ['user'] })
      case 'hang': return 'hang'
    }
  })
  const logs = logCapture()
  const h: Harness = await build(t, {
    env: { USERS_URL: backend, UPSTREAM_TIMEOUT_MS: '500', LOCKOUT_THRESHOLD: '2', LOG_LEVEL: 'info' },
    logger: { level: 'info', stream: logs.stream, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }
  })
  const expectations: Array<[mode: string, status: number, code: string, event?: string]> = [
    ['401-other', 502, 'upstream_unavailable', 'identity_backend_refused'],
    ['401-bare', 502, 'upstream_unavailable', 'identity_backend_refused'],
    ['403', 502, 'upstream_unavailable', 'identity_backend_refused'],
    ['500', 502, 'upstream_unavailable', 'identity_backend_error'],
    ['400', 502, 'upstream_unavailable', 'identity_backend_error'],
    ['redirect', 502, 'upstream_unavailable', 'identity_backend_error'],
    ['numeric-id', 502, 'upstream_unavailable', 'identity_backend_error'],
    ['no-roles', 502, 'upstream_unavailable', 'identity_backend_error'],
    ['not-json', 502, 'upstream_unavailable', 'identity_backend_error'],
    ['hang', 504, 'upstream_timeout', 'identity_backend_error']
  ]
  for (const [m, status, code, event] of expectations) {
    mode = m
    const res = await loginCall(h.url, 'alice', 'alice-password', { headers: { 'x-request-id': `mode-${m}` } })
    t.equal(res.status, status, `${m}: ${status}`)
    t.equal(res.body.code, code, `${m}: ${code}`)
    t.ok(logs.events().some((e) => e.event === event && e.request_id === `mode-${m}`), `${m}: event ${event}`)
  }
  // None of those counted (threshold 2): one real failure, then a success.
  mode = 'wrong-password'
  const failed = await loginCall(h.url, 'alice', 'wrong-password', { headers: { 'x-request-id': 'mode-wrong' } })
  t.equal(failed.status, 401, 'invalid_credentials is a failed login')
  t.equal(failed.body.code, 'invalid_credentials')
  t.ok(logs.events().some((e) => e.event === 'login_failed' && e.request_id === 'mode-wrong'))
  mode = 'ok'
  t.equal((await loginCall(h.url, 'alice', 'alice-password')).status, 200, 'not locked after ten backend failures and one wrong password')

  t.test('the lookup: 404 means unknown only with code not_found', async (t) => {
    mode = 'wrong-password'
    await t.rejects(h.gateway.users.lookupUser('1001', 'lookup-1'), { code: 'upstream_unavailable', event: 'identity_backend_refused' },
      'a 401 of the lookup is a refusal')
    mode = '500'
    await t.rejects(h.gateway.users.lookupUser('1001', 'lookup-2'), { code: 'upstream_unavailable', event: 'identity_backend_error' })
    mode = 'ok'
    await t.rejects(h.gateway.users.lookupUser('1001', 'lookup-3'), { code: 'upstream_unavailable' },
      'a user without `active` is malformed')
  })
})

t.test('a 404 without code not_found is no unknown user', async (t) => {
  const backend = await fakeBackend(t, (_req, res) => json(res, 404, '<h1>Not Found</h1>', 'text/html'))
  const h = await build(t, { env: { USERS_URL: backend } })
  await t.rejects(h.gateway.users.lookupUser('1001', 'lookup-html'), { code: 'upstream_unavailable', event: 'identity_backend_error' })
})
