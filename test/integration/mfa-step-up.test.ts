/**
 * Step-up (docs/mfa.md, RFC 9470): routes that need a second factor within N seconds, ADMIN_MFA,
 * removing a factor (needs a fresh one), an admin's reset of a user's factors, and the start-up
 * refusals when factors are configured without MFA_ENCRYPTION_KEY.
 */
import t from 'tap'
import { build, type Harness } from '../helper.js'
import { claimsOf } from '../helpers/auth.js'
import { enrolTotp, freshStep, mfaKey, pyotpMissing, totpAt } from '../helpers/pyotp.js'
import { ROUTE_TABLE } from '../../src/proxy/route-table.js'
import { loadConfig } from '../../src/config.js'
import { stepUpWithoutFactors } from '../../src/mfa/step-up.js'
import { directoryOf } from '../../services/users/app.js'

const skip = pyotpMissing()

/** A login with password and TOTP code; the access token. */
async function mfaLogin (h: Harness, username: string, secret: string, step: number): Promise<{ access: string, refresh: string }> {
  const first = await h.request('POST', '/auth/login', { body: { username, password: `${username}-password` } })
  if (first.status !== 403) throw new Error(`expected mfa_required: ${first.status} ${first.text}`)
  const done = await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: first.body.mfa_token, code: totpAt(secret, step) } })
  if (done.status !== 200) throw new Error(`verify: ${done.status} ${done.text}`)
  return done.body
}

t.test('a step-up route needs a second factor used within its max age (RFC 9470)', { skip: skip ?? false }, async (t) => {
  const routes = ROUTE_TABLE.map((r) => r.path === '/api/orders' ? { ...r, stepUpMaxAge: 60 } : r)
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey() }, routes })
  const bob = await h.login('bob')
  const refused = await h.request('GET', '/api/orders', { token: bob.access })
  t.equal(refused.status, 401)
  t.equal(refused.body.code, 'insufficient_user_authentication')
  t.equal(refused.headers.get('www-authenticate'), 'Bearer error="insufficient_user_authentication", max_age="60"')
  t.equal((await h.request('GET', '/api/users/me', { token: bob.access })).status, 200, 'other routes: no second factor needed')

  const step = await freshStep()
  const alicePassword = await h.login('alice')
  const { secret } = await enrolTotp(h, alicePassword.access, step - 1)
  t.equal((await h.request('GET', '/api/orders', { token: alicePassword.access })).status, 401, 'a session from before the factor: refused')
  const alice = await mfaLogin(h, 'alice', secret, step)
  t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 200, 'a login with a second factor just now: allowed')

  // Step-up of the password-only session: a new access token with amr mfa.
  const stepped = await h.request('POST', '/auth/mfa/step-up', { token: alicePassword.access, body: { code: totpAt(secret, step + 1) } })
  t.equal(stepped.status, 200, stepped.text)
  t.same(claimsOf(stepped.body.access).amr, ['pwd', 'otp', 'mfa'])
  t.equal(claimsOf(stepped.body.access).sid, claimsOf(alicePassword.access).sid, 'the same session')
  t.equal((await h.request('GET', '/api/orders', { token: stepped.body.access })).status, 200)
  const wrong = await h.request('POST', '/auth/mfa/step-up', { token: alicePassword.access, body: { code: totpAt(secret, step + 1) } })
  t.equal(wrong.body.code, 'mfa_code_invalid', 'a used code does not step up again')
})

t.test('removing a factor needs a fresh second factor; an admin resets a user with the own fresh factor', { skip: skip ?? false },
  async (t) => {
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey() } })
  const step = await freshStep()
  const password = await h.login('alice')
  const { secret, factorId } = await enrolTotp(h, password.access, step - 1)

  const refused = await h.request('DELETE', `/auth/mfa/${factorId}`, { token: password.access })
  t.equal(refused.status, 401, 'a password-only session cannot remove the factor')
  t.equal(refused.headers.get('www-authenticate'), 'Bearer error="insufficient_user_authentication", max_age="300"')
  t.equal(directoryOf(h.users).factors('1001').length, 2)

  const alice = await mfaLogin(h, 'alice', secret, step)
  const adminPassword = await h.login('admin')
  const view = await h.request('GET', '/admin/users/1001/factors', { token: adminPassword.access })
  t.equal(view.status, 200)
  t.same(view.body.factors.map((f: any) => f.type).sort(), ['recovery_codes', 'totp'], 'the dashboard sees the factors')
  t.notMatch(view.text, secret)
  const noReset = await h.request('DELETE', '/admin/users/1001/factors', { token: adminPassword.access })
  t.equal(noReset.status, 401, 'an admin without a fresh second factor cannot reset')
  t.equal(noReset.body.code, 'insufficient_user_authentication')
  t.equal((await h.request('DELETE', '/admin/users/1001/factors', { token: alice.access })).status, 403, 'not an admin')

  const adminFactor = await enrolTotp(h, adminPassword.access, step - 1)
  const admin = await mfaLogin(h, 'admin', adminFactor.secret, step)
  const reset = await h.request('DELETE', '/admin/users/1001/factors', { token: admin.access })
  t.equal(reset.status, 200)
  t.equal(reset.body.removed, 2)
  t.same(directoryOf(h.users).factors('1001'), [], 'the backend has none left')
  t.equal(
    (await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })).status,
    200,
    'alice logs in with the password again'
  )

  const events = await h.request('GET', '/admin/events?event=mfa_removed', { token: admin.access })
  t.ok(events.body.events.some((e: any) => e.user_id === '1001' && e.by === '1003'), 'the reset is an event naming the admin')
  const enrolled = await h.request('GET', '/admin/events?event=mfa_enrolled', { token: admin.access })
  t.ok(enrolled.body.events.length >= 2, 'enrolments are events')

  // The user removes a factor with a fresh one.
  const bobPassword = await h.login('bob')
  const bobFactor = await enrolTotp(h, bobPassword.access, step - 1)
  const bob = await mfaLogin(h, 'bob', bobFactor.secret, step)
  t.equal((await h.request('DELETE', `/auth/mfa/${bobFactor.factorId}`, { token: bob.access })).status, 204)
  t.same(directoryOf(h.users).factors('1002'), [], 'the recovery codes go with the last factor')
})

t.test('ADMIN_MFA=required: admin routes need a second factor; an admin without one can still sign in and enrol', { skip: skip ?? false },
  async (t) => {
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey(), ADMIN_MFA: 'required' } })
  const password = await h.login('admin')
  const refused = await h.request('GET', '/admin/blocks', { token: password.access })
  t.equal(refused.status, 401)
  t.equal(refused.body.code, 'insufficient_user_authentication')
  t.equal(refused.headers.get('www-authenticate'), 'Bearer error="insufficient_user_authentication", acr_values="mfa"')
  const proxied = await h.request('GET', '/api/users', { token: password.access })
  t.equal(proxied.status, 401, 'a proxied route that needs role admin too')
  const step = await freshStep()
  const { secret } = await enrolTotp(h, password.access, step - 1)
  const admin = await mfaLogin(h, 'admin', secret, step)
  t.equal((await h.request('GET', '/admin/blocks', { token: admin.access })).status, 200)
  t.equal((await h.request('GET', '/api/users', { token: admin.access })).status, 200)
  const alice = await h.login('alice')
  t.equal((await h.request('GET', '/api/users/me', { token: alice.access })).status, 200, 'user routes are unchanged')
})

t.test('factors configured without MFA_ENCRYPTION_KEY stop start-up', async (t) => {
  t.throws(() => loadConfig({ ADMIN_MFA: 'required' }), /MFA_ENCRYPTION_KEY: is required when ADMIN_MFA=required/)
  t.throws(() => loadConfig({ WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: 'http://localhost:8080' }), /MFA_ENCRYPTION_KEY/)
  t.throws(() => loadConfig({ MFA_ENCRYPTION_KEY: Buffer.alloc(16).toString('base64') }), /MFA_ENCRYPTION_KEY: must be 32 random bytes/)
  t.throws(() => loadConfig({ MFA_ENCRYPTION_KEY: 'not base64!' }), /MFA_ENCRYPTION_KEY/)
  t.throws(() => loadConfig({ ADMIN_MFA: 'sometimes' }), /ADMIN_MFA/)
  t.equal(loadConfig({ MFA_ENCRYPTION_KEY: mfaKey() }).mfa.key?.length, 32)
  const routes = ROUTE_TABLE.map((r) => r.path === '/api/orders' ? { ...r, stepUpMaxAge: 60 } : r)
  t.match(stepUpWithoutFactors(routes, loadConfig({})), [/route \/api\/orders: step_up_max_age needs second factors/], 'a step-up route without the key stops start-up')
  t.same(stepUpWithoutFactors(routes, loadConfig({ MFA_ENCRYPTION_KEY: mfaKey() })), [], 'with the key it is fine')
  const off = await build(t)
  t.equal(
    (await off.request('POST', '/auth/mfa/totp', { token: (await off.login('alice')).access })).status,
    404,
    'no key: no factor routes'
  )
})
