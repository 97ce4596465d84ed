/**
 * Machine clients on two gateway replicas sharing one Redis (docs/machine-clients.md): a client registered on
 * one replica works on the other, deleting it on one refuses its token on the other at the very
 * next request, and both limits (per client, and failed client authentications per client IP)
 * are shared. Security events are logged without the secret.
 */
import t from 'tap'
import { build } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { call, header } from '../helpers/abuse.js'
import { REDACTED_PATHS } from '../../src/server-options.js'
import { clientToken, registerClient, tokenCall } from '../helpers/machine-clients.js'
import { captureLogLines } from '../helpers/log-capture.js'

interface LogLine { event?: string, client_id?: string, ip?: string, request_id?: string, [k: string]: unknown }

/** A production-like logger (redaction included) writing into `lines`. */
function capture (lines: string[]) {
  const { stream } = captureLogLines(lines)
  return { level: 'info', stream, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }
}

const GRANT: [string, string] = ['grant_type', 'client_credentials']

t.test('a client created on one replica is used on the other; deletion holds on the next request', async (t) => {
  const a = await build(t, { env: RELAXED_LIMITS })
  const b = await build(t, { env: RELAXED_LIMITS, redis: a.redis, keyRing: a.keyRing })
  const admin = await a.login('admin')
  const client = await registerClient(a.url, admin.access, ['orders:read', 'orders:write'], 'cross-replica')

  const listedOnB = await b.request('GET', '/admin/clients', { token: admin.access })
  t.ok((listedOnB.body.clients as Array<{ client_id: string }>).some((c) => c.client_id === client.client_id),
    'listed on the other replica')

  const token = await clientToken(b.url, client)
  const created = await a.request('POST', '/api/orders', { token, body: { item: 'from b' } })
  t.equal(created.status, 201, 'token of replica b works on replica a')
  t.equal((await b.request('GET', '/api/orders', { token })).status, 200, 'and on b')

  t.equal((await b.request('DELETE', `/admin/clients/${client.client_id}`, { token: admin.access })).status, 204, 'deleted on b')
  const onA = await a.request('GET', '/api/orders', { token })
  t.equal(onA.status, 401, 'refused on a at the next request')
  t.equal(onA.body.code, 'token_revoked')
  const tokenOnA = await tokenCall(a.url, { basic: { id: client.client_id, secret: client.client_secret }, form: [GRANT] })
  t.equal(tokenOnA.status, 401)
  t.equal(tokenOnA.body.error, 'invalid_client', 'no new token on a either')
})

t.test('limits: per client and failed client authentications per IP, shared by the replicas; events', async (t) => {
  const lines: string[] = []
  const env = { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '4', LOGIN_IP_LIMIT: '3' }
  const a = await build(t, { env, logger: capture(lines) })
  const b = await build(t, { env, redis: a.redis, keyRing: a.keyRing, logger: capture(lines) })
  const replicas = [a, b]
  // The admin logs in from another address: LOGIN_IP_LIMIT is small here.
  const adminLogin = await call(a.url, 'POST', '/auth/login',
    { body: { username: 'admin', password: 'admin-password' }, from: '127.0.0.3' })
  const admin = adminLogin.body as { access: string }
  const client = await registerClient(a.url, admin.access, ['orders:read'], 'limited')
  const other = await registerClient(a.url, admin.access, ['orders:read'], 'neighbour')

  await t.test('API_CLIENT_LIMIT counts the token request and proxied requests per client', async (t) => {
    const token = await clientToken(a.url, client) // 1
    const statuses: number[] = []
    let last
    for (let i = 0; i < 5; i++) {
      last = await call(replicas[i % 2]!.url, 'GET', '/api/orders', { token })
      statuses.push(last.status)
      if (i === 0) t.equal(header(last, 'x-ratelimit-limit'), '4', 'limit header')
    }
    t.same(statuses, [200, 200, 200, 429, 429], 'the fourth request of the minute is the last one')
    t.equal(last!.body.code, 'rate_limited')
    t.ok(Number(header(last!, 'retry-after')) > 0, 'Retry-After')
    const tokenAgain = await tokenCall(b.url, { basic: { id: client.client_id, secret: client.client_secret }, form: [GRANT] })
    t.equal(tokenAgain.status, 429, 'no more tokens either')
    t.equal(tokenAgain.body.error, 'rate_limited')
    t.equal((await call(a.url, 'GET', '/api/orders', { token: await clientToken(a.url, other) })).status, 200,
      'another client is not affected')
  })

  await t.test('wrong secrets count per client IP; past the limit even the right secret waits', async (t) => {
    const wrong = { id: other.client_id, secret: client.client_secret }
    const from = '127.0.0.2'
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await tokenCall(replicas[i % 2]!.url, { basic: wrong, form: [GRANT], from })).status)
    t.same(statuses, [401, 401, 401, 429, 429], 'three failures, then 429')
    const right = await tokenCall(a.url, { basic: { id: other.client_id, secret: other.client_secret }, form: [GRANT], from })
    t.equal(right.status, 429, 'the right secret from that IP waits too')
    t.equal(right.body.error, 'rate_limited')
    t.equal(right.headers['cache-control'], 'no-store')
    t.ok(Number(right.headers['retry-after']) > 0, 'Retry-After')
    t.equal((await tokenCall(b.url, { basic: { id: other.client_id, secret: other.client_secret }, form: [GRANT],
      from: '127.0.0.4' })).status, 200, 'another IP is not affected')
  })

  await t.test('security events, never the secret', async (t) => {
    t.equal((await b.request('DELETE', `/admin/clients/${other.client_id}`, { token: admin.access })).status, 204)
    const events = lines.map((l) => JSON.parse(l) as LogLine).filter((l) => typeof l.event === 'string')
    const of = (name: string): LogLine[] => events.filter((e) => e.event === name)
    t.ok(of('client_created').some((e) => e.client_id === client.client_id), 'client_created')
    const issued = of('client_token_issued').find((e) => e.client_id === client.client_id)
    t.ok(issued, 'client_token_issued')
    t.equal(issued?.scope, 'orders:read')
    t.type(issued?.request_id, 'string')
    t.type(issued?.ip, 'string')
    const failed = of('client_auth_failed')
    t.ok(failed.length >= 3, 'client_auth_failed for each wrong secret')
    t.ok(failed.every((e) => e.client_id === other.client_id && e.reason === 'wrong_secret' && e.ip === '127.0.0.2'))
    t.ok(of('client_revoked').some((e) => e.client_id === other.client_id), 'client_revoked')
    t.ok(of('rate_limited').some((e) => e.client_id === client.client_id), 'rate_limited with the client')
    for (const secret of [client.client_secret, other.client_secret]) {
      t.notOk(lines.some((l) => l.includes(secret)), 'no client secret in any log line')
    }
  })
})
