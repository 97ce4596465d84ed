/**
 * The token endpoint and the client registry under attack:
 * - wrong secrets are counted before any secret is compared: in a concurrent burst of wrong
 *   secrets with one right one, no more than LOGIN_IP_LIMIT secrets are compared per window, so
 *   the right one cannot ride the burst past the limit;
 * - the identity backend's scopes are reserved for the gateway: POST /admin/clients refuses them.
 */
import t from 'tap'
import { build } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { call } from '../helpers/abuse.js'
import { registerClient, tokenCall } from '../helpers/machine-clients.js'
import { metricValue } from '../helpers/simplejwt.js'

const GRANT: [string, string] = ['grant_type', 'client_credentials']

t.test('a concurrent burst of wrong secrets and one right one: at most LOGIN_IP_LIMIT compared', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, LOGIN_IP_LIMIT: '10' } })
  const admin = (await call(h.url, 'POST', '/auth/login',
    { body: { username: 'admin', password: 'admin-password' }, from: '127.0.0.3' })).body as { access: string }
  const client = await registerClient(h.url, admin.access, ['orders:read'])
  const wrong = Array.from({ length: 59 }, () => tokenCall(h.url,
    { basic: { id: client.client_id, secret: 'wrong-secret-wrong-secret' }, form: [GRANT] }))
  const right = tokenCall(h.url, { basic: { id: client.client_id, secret: client.client_secret }, form: [GRANT] })
  const statuses = (await Promise.all([...wrong, right])).map((r) => r.status)
  const compared = statuses.filter((s) => s !== 429)
  t.ok(compared.length <= 10, `no more than 10 attempts got past the limit to a comparison (${compared.length}: ${statuses.join(',')})`)
  t.ok(statuses.filter((s) => s === 429).length >= 50, 'the rest is 429 rate_limited')
  t.ok(statuses.every((s) => s === 200 || s === 401 || s === 429), 'only 200, 401 and 429')
  // Every compared wrong secret is a client_auth_failed event; a refused attempt is not compared.
  const failedComparisons = await metricValue(h, 'gateway_security_events_total', { event: 'client_auth_failed' })
  t.ok(failedComparisons <= 10, `at most 10 wrong secrets compared (${failedComparisons})`)
  t.equal(failedComparisons, statuses.filter((s) => s === 401).length, 'one event per 401')
  const after = await tokenCall(h.url, { basic: { id: client.client_id, secret: client.client_secret }, form: [GRANT] })
  t.equal(after.status, 429, 'past the limit even the right secret waits for the window')
  const elsewhere = await tokenCall(h.url, { basic: { id: client.client_id, secret: client.client_secret }, form: [GRANT],
    from: '127.0.0.4' })
  t.equal(elsewhere.status, 200, 'another address is not affected')
})

t.test('right secrets give their reservation back: a busy client is never limited for getting tokens', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, LOGIN_IP_LIMIT: '3' } })
  const admin = (await call(h.url, 'POST', '/auth/login',
    { body: { username: 'admin', password: 'admin-password' }, from: '127.0.0.3' })).body as { access: string }
  const client = await registerClient(h.url, admin.access, ['orders:read'])
  for (let i = 0; i < 8; i++) {
    t.equal((await tokenCall(h.url, { basic: { id: client.client_id, secret: client.client_secret }, form: [GRANT] })).status, 200,
      `token ${i + 1}`)
  }
})

t.test('POST /admin/clients refuses the identity backend\'s scopes', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  for (const scope of ['credentials:check', 'users:read', 'factors:read', 'factors:write']) {
    const res = await h.request('POST', '/admin/clients', { token: admin.access, body: { name: 'sneaky', scopes: ['orders:read', scope] } })
    t.equal(res.status, 400, `${scope}: 400`)
    t.equal(res.body.code, 'invalid_request')
    t.match(res.body.detail, scope, 'the answer names the reserved scope')
  }
  const listed = await h.request('GET', '/admin/clients', { token: admin.access })
  t.same(listed.body.clients, [], 'no client was created')
  t.equal((await h.request('POST', '/admin/clients', { token: admin.access, body: { name: 'fine', scopes: ['orders:read'] } })).status,
    201, 'ordinary scopes are fine')
})
