/**
 * Second factors with TOTP (docs/mfa.md), from the outside: codes from Debian's pyotp, enrolment
 * and login across a Redis flush (factors live in the identity backend), each code once, recovery
 * codes once, the mfa_token's 5 tries, wrong codes in the lockout, amr and auth_time across refresh.
 */
import t from 'tap'
import { build, type Harness } from '../helper.js'
import { directoryOf } from '../../services/users/app.js'
import { claimsOf, refresh } from '../helpers/auth.js'
import { enrolTotp, freshStep, mfaKey, parseUri, pyotpMissing, totpAt } from '../helpers/pyotp.js'

const skip = pyotpMissing()

async function passwordStep (
  h: Harness,
  username: string,
  password: string,
  extra: Record<string, unknown> = {}
): Promise<{ mfa_token: string, methods: string[] }> {
  const res = await h.request('POST', '/auth/login', { body: { username, password, ...extra } })
  if (res.status !== 403) throw new Error(`expected mfa_required, got ${res.status} ${res.text}`)
  return res.body
}

t.test('TOTP enrolment, login with pyotp codes across a Redis flush, each code once', { skip: skip ?? false }, async (t) => {
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey() } })
  const alice = await h.login('alice')
  t.same(claimsOf(alice.access).amr, ['pwd'], 'a password login: amr pwd')
  t.type(claimsOf(alice.access).auth_time, 'number')

  const started = await h.request('POST', '/auth/mfa/totp', { token: alice.access })
  t.equal(started.status, 200)
  t.match(started.body.qr_svg, /^<svg[\s\S]*<\/svg>\s*$/, 'the QR code is an SVG')
  const parsed = parseUri(started.body.otpauth_uri)
  t.equal(parsed.secret, started.body.secret, 'pyotp reads the secret from the otpauth URI')
  t.equal(parsed.issuer, 'auth-gateway')
  t.equal(parsed.name, 'alice')

  const listed = await h.request('GET', '/auth/mfa', { token: alice.access })
  t.same(listed.body.factors.map((f: any) => [f.type, f.status]), [['totp', 'pending']])
  // Before confirmation the factor does not count: a login is a password login.
  t.equal((await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })).status, 200)

  const step = await freshStep()
  const wrong = await h.request(
    'POST',
    '/auth/mfa/totp/confirm',
    { token: alice.access, body: { factor_id: started.body.factor_id, code: totpAt(started.body.secret, step + 5) } }
  )
  t.equal(wrong.status, 401)
  t.equal(wrong.body.code, 'mfa_code_invalid')
  // One step of drift: the previous step's code confirms.
  const confirmed = await h.request(
    'POST',
    '/auth/mfa/totp/confirm',
    { token: alice.access, body: { factor_id: started.body.factor_id, code: totpAt(started.body.secret, step - 1) } }
  )
  t.equal(confirmed.status, 200)
  const codes: string[] = confirmed.body.recovery_codes
  t.equal(codes.length, 10)
  t.equal(new Set(codes).size, 10)

  // The identity backend holds only ciphertext.
  const records = directoryOf(h.users).factors('1001')
  t.same(
    records.map((r) => [r.id, r.type, r.status]).sort(),
    [[started.body.factor_id, 'totp', 'active'], ['recovery-codes', 'recovery_codes', 'active']].sort(),
    'the backend keeps the TOTP factor and the recovery codes'
  )
  t.ok(records.every((r) => r.data.startsWith('v1.')), 'sealed')
  const stored = JSON.stringify(records)
  t.notMatch(stored, started.body.secret, 'no plaintext secret in the backend')
  for (const c of codes) t.notMatch(stored, c)

  // Redis loses everything: the factor is still there.
  await h.redis.flushAll()

  const pending = await passwordStep(h, 'alice', 'alice-password')
  t.same(pending.methods, ['totp', 'recovery_code'])
  t.match(pending.mfa_token, /^[A-Za-z0-9_-]{43}$/)
  const code = totpAt(started.body.secret, step)
  const verified = await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: pending.mfa_token, code } })
  t.equal(verified.status, 200, verified.text)
  t.equal(verified.body.user.username, 'alice')
  const claims = claimsOf(verified.body.access)
  t.same(claims.amr, ['pwd', 'otp', 'mfa'])
  t.ok(Math.abs((claims.auth_time as number) - Date.now() / 1000) < 60, 'auth_time is now')
  t.equal(
    (await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: pending.mfa_token, code } })).body.code,
    'mfa_token_invalid',
    'the mfa_token is single use'
  )

  // The same code again, with a new mfa_token: refused (its step was used).
  const again = await passwordStep(h, 'alice', 'alice-password')
  const replay = await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: again.mfa_token, code } })
  t.equal(replay.status, 401)
  t.equal(replay.body.code, 'mfa_code_invalid', 'a replayed code is refused')
  // The step before the used one is refused too; the next one passes.
  t.equal(
    (await h.request(
      'POST',
      '/auth/mfa/verify',
      { body: { mfa_token: again.mfa_token, code: totpAt(started.body.secret, step - 1) } }
    )).body.code,
    'mfa_code_invalid'
  )
  const next = await h.request(
    'POST',
    '/auth/mfa/verify',
    { body: { mfa_token: again.mfa_token, code: totpAt(started.body.secret, step + 1) } }
  )
  t.equal(next.status, 200, 'the next step passes (one step of drift)')

  // amr and auth_time are kept across refresh.
  const refreshed = await refresh(h, verified.body.refresh)
  t.equal(refreshed.status, 200)
  t.same(claimsOf(refreshed.body.access).amr, ['pwd', 'otp', 'mfa'])
  t.equal(claimsOf(refreshed.body.access).auth_time, claims.auth_time)
  t.equal(claimsOf(refreshed.body.refresh).auth_time, claims.auth_time)

  // A recovery code works once.
  const third = await passwordStep(h, 'alice', 'alice-password')
  const byCode = await h.request(
    'POST',
    '/auth/mfa/verify',
    { body: { mfa_token: third.mfa_token, recovery_code: codes[0]!.toUpperCase() } }
  )
  t.equal(byCode.status, 200, 'a recovery code completes a login (case does not matter)')
  const fourth = await passwordStep(h, 'alice', 'alice-password')
  t.equal(
    (await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: fourth.mfa_token, recovery_code: codes[0] } })).body.code,
    'mfa_code_invalid',
    'a used recovery code is refused'
  )
  const list = await h.request('GET', '/auth/mfa', { token: byCode.body.access })
  t.same(
    list.body.factors.map((f: any) => [f.type, f.status, f.remaining]).sort(),
    [['recovery_codes', 'active', 9], ['totp', 'active', undefined]]
  )
  t.notMatch(list.text, started.body.secret, 'the list shows no secret')

  // Bad bodies.
  t.equal(
    (await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: fourth.mfa_token, code: '123456', recovery_code: 'x' } })).status,
    400,
    'two proofs at once'
  )
  t.equal((await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: fourth.mfa_token } })).status, 400, 'no proof')
  t.equal((await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: 'forged', code: '123456' } })).body.code, 'mfa_token_invalid')
})

t.test('a stolen mfa_token takes 5 tries; wrong codes count in the lockout', { skip: skip ?? false }, async (t) => {
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey(), LOCKOUT_THRESHOLD: '100' } })
  const step = await freshStep()
  const { secret } = await enrolTotp(h, (await h.login('alice')).access, step - 1)
  const pending = await passwordStep(h, 'alice', 'alice-password')
  for (let i = 1; i <= 5; i++) {
    const res = await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: pending.mfa_token, code: totpAt(secret, step + 10 + i) } })
    t.equal(res.body.code, 'mfa_code_invalid', `try ${i}: wrong code`)
  }
  const sixth = await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: pending.mfa_token, code: totpAt(secret, step) } })
  t.equal(sixth.status, 401)
  t.equal(sixth.body.code, 'mfa_token_invalid', 'after 5 tries even the right code is refused: the token is gone')
  const fresh = await passwordStep(h, 'alice', 'alice-password')
  t.equal(
    (await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: fresh.mfa_token, code: totpAt(secret, step) } })).status,
    200,
    'a new login works'
  )
})

t.test('wrong codes lock the account like wrong passwords', { skip: skip ?? false }, async (t) => {
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey(), LOCKOUT_THRESHOLD: '3' } })
  const step = await freshStep()
  const { secret } = await enrolTotp(h, (await h.login('bob')).access, step - 1)
  const pending = await passwordStep(h, 'bob', 'bob-password')
  for (let i = 1; i <= 3; i++) {
    t.equal(
      (await h.request(
        'POST',
        '/auth/mfa/verify',
        { body: { mfa_token: pending.mfa_token, code: totpAt(secret, step + 10 + i) } }
      )).body.code,
      'mfa_code_invalid'
    )
  }
  // A right password no longer clears the count: the attacker knows it.
  const locked = await h.request('POST', '/auth/login', { body: { username: 'bob', password: 'bob-password' } })
  t.equal(locked.status, 429)
  t.equal(locked.body.code, 'account_locked')
  t.ok(Number(locked.headers.get('retry-after')) > 0)
})

t.test('the simplejwt login answers mfa_required in its own dialect', { skip: skip ?? false }, async (t) => {
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey() } })
  const step = await freshStep()
  const { secret } = await enrolTotp(h, (await h.login('alice')).access, step - 1)
  const res = await h.request('POST', '/api/token/', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(res.status, 403)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.equal(res.body.code, 'mfa_required')
  t.equal(res.body.detail, 'A second factor is required.')
  t.same(res.body.methods, ['totp', 'recovery_code'])
  const done = await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: res.body.mfa_token, code: totpAt(secret, step) } })
  t.equal(done.status, 200)
  t.type(done.body.refresh, 'string', 'simplejwt clients get access and refresh')
  t.equal(
    (await h.request('POST', '/api/token/', { body: { username: 'bob', password: 'bob-password' } })).status,
    200,
    'a user without a factor: as before'
  )
})

t.test('cookie mode carries over to the second step', { skip: skip ?? false }, async (t) => {
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey(), COOKIE_SECURE: 'false' } })
  const step = await freshStep()
  const { secret } = await enrolTotp(h, (await h.login('alice')).access, step - 1)
  const pending = await passwordStep(h, 'alice', 'alice-password', { cookie: true })
  const done = await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: pending.mfa_token, code: totpAt(secret, step) } })
  t.equal(done.status, 200)
  t.equal(done.body.refresh, undefined, 'no refresh token in the body')
  t.match(done.headers.getSetCookie().join('\n'), /refresh_token=.*HttpOnly/i)
})
