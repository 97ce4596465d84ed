/**
 * Passkeys (docs/mfa.md#passkeys) from the outside, with a software authenticator
 * (test/helpers/soft-authenticator.ts) answering the gateway's real options: registration, a
 * Redis flush (the passkey lives in the identity backend), sign-in with the passkey alone, the
 * passkey as second step and as step-up, removal; and the refusals: another RP ID, a wrong
 * origin, a replayed challenge, a counter going back, an unknown credential, a body that is no
 * response, no user verification for a passkey alone.
 */
import t from 'tap'
import { build, type Harness } from '../helper.js'
import { directoryOf } from '../../services/users/app.js'
import { claimsOf, setCookieOf } from '../helpers/auth.js'
import { dpopKey } from '../helpers/dpop.js'
import { captureLogLines } from '../helpers/log-capture.js'
import { mfaKey } from '../helpers/pyotp.js'
import { SoftAuthenticator } from '../helpers/soft-authenticator.js'

const RP_ID = 'localhost'
const ORIGIN = 'http://localhost:8080'
const ALICE = '1001'

const events = (lines: string[], name: string): Array<Record<string, unknown>> =>
  lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === name)

async function registered (
  h: Harness,
  access: string,
  authenticator: SoftAuthenticator
): Promise<{ factor_id: string, recovery_codes?: string[] }> {
  const options = await h.request('POST', '/auth/mfa/webauthn/register/options', { token: access })
  if (options.status !== 200) throw new Error(`register/options: ${options.status} ${options.text}`)
  const body = authenticator.register(options.body)
  const verified = await h.request('POST', '/auth/mfa/webauthn/register/verify', { token: access, body })
  if (verified.status !== 200) throw new Error(`register/verify: ${verified.status} ${verified.text}`)
  return verified.body
}

async function signInOptions (h: Harness, body: Record<string, unknown> = {}): Promise<any> {
  const res = await h.request('POST', '/auth/webauthn/options', { body })
  if (res.status !== 200) throw new Error(`options: ${res.status} ${res.text}`)
  return res.body
}

t.test('a passkey: registered, kept across a Redis flush, alone, as second step, as step-up, removed', async (t) => {
  const { stream, lines } = captureLogLines()
  const h = await build(t, {
    env: { MFA_ENCRYPTION_KEY: mfaKey(), WEBAUTHN_RP_ID: RP_ID, WEBAUTHN_ORIGINS: `${ORIGIN},http://localhost:9090` },
    logger: { level: 'info', stream }
  })
  const passkey = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID })
  const alice = await h.login('alice')

  const options = await h.request('POST', '/auth/mfa/webauthn/register/options', { token: alice.access })
  t.equal(options.status, 200, options.text)
  t.equal(options.body.rp.id, RP_ID)
  t.equal(options.body.user.name, 'alice')
  t.equal(Buffer.from(options.body.user.id, 'base64url').toString(), ALICE, 'the user handle is the user id')
  t.equal(options.body.authenticatorSelection.residentKey, 'required', 'a discoverable credential')
  t.same(options.body.excludeCredentials, [])
  t.ok(options.body.pubKeyCredParams.some((p: any) => p.alg === -7), 'ES256 offered')
  t.match(options.body.challenge, /^[A-Za-z0-9_-]{43}$/)

  const response = passkey.register(options.body)
  const verified = await h.request('POST', '/auth/mfa/webauthn/register/verify', { token: alice.access, body: response })
  t.equal(verified.status, 200, verified.text)
  t.match(verified.body.factor_id, /^[\w-]+$/)
  t.equal(verified.body.recovery_codes.length, 10, 'a first factor comes with recovery codes, shown once')
  const replayed = await h.request('POST', '/auth/mfa/webauthn/register/verify', { token: alice.access, body: response })
  t.equal(replayed.body.code, 'insufficient_user_authentication', 'now that alice has a factor, a password-only session adds none')
  t.equal(events(lines, 'mfa_enrolled').at(-1)?.type, 'webauthn')

  const records = directoryOf(h.users).factors(ALICE)
  t.same(records.map((r) => r.type).sort(), ['recovery_codes', 'webauthn'], 'the passkey is a record in the identity backend')
  t.ok(records.every((r) => r.data.startsWith('v1.')), 'sealed')
  t.notMatch(JSON.stringify(records), passkey.id, 'the credential id is not in the clear')

  // With a factor, adding another needs a session that used one.
  const more = await h.request('POST', '/auth/mfa/webauthn/register/options', { token: alice.access })
  t.equal(more.status, 401)
  t.equal(more.body.code, 'insufficient_user_authentication')

  await h.redis.flushAll()

  // A passkey alone.
  const signIn = await signInOptions(h)
  t.equal(signIn.rpId, RP_ID)
  t.equal(signIn.userVerification, 'required', 'a passkey alone needs user verification')
  t.equal(signIn.allowCredentials, undefined, 'discoverable: no credentials listed')
  const assertion = passkey.assert(signIn)
  const alone = await h.request('POST', '/auth/webauthn/verify', { body: assertion })
  t.equal(alone.status, 200, alone.text)
  t.equal(alone.body.user.username, 'alice')
  t.equal(alone.body.token_type, 'Bearer')
  t.type(alone.body.refresh, 'string')
  const claims = claimsOf(alone.body.access)
  t.same(claims.amr, ['hwk', 'mfa'])
  t.ok(Math.abs((claims.auth_time as number) - Date.now() / 1000) < 60, 'auth_time is now')
  const again = await h.request('POST', '/auth/webauthn/verify', { body: assertion })
  t.equal(again.status, 401)
  t.equal(again.body.code, 'passkey_invalid', 'a replayed challenge is refused')

  // After a password: methods name webauthn; options of that step list the user's passkeys.
  const password = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(password.status, 403)
  t.same(password.body.methods, ['webauthn', 'recovery_code'])
  const second = await signInOptions(h, { mfa_token: password.body.mfa_token })
  t.same(second.allowCredentials.map((c: any) => c.id), [passkey.id])
  const mfa = await h.request('POST', '/auth/mfa/verify',
    { body: { mfa_token: password.body.mfa_token, webauthn: passkey.assert(second) } })
  t.equal(mfa.status, 200, mfa.text)
  t.same(claimsOf(mfa.body.access).amr, ['pwd', 'hwk', 'mfa'])

  // A second step's challenge is that user's: no sign-in with it alone.
  const other = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  const stepOptions = await signInOptions(h, { mfa_token: other.body.mfa_token })
  t.equal((await h.request('POST', '/auth/webauthn/verify', { body: passkey.assert(stepOptions) })).body.code, 'passkey_invalid')

  // Step-up of the password + passkey session with the passkey.
  const stepUp = await h.request('POST', '/auth/mfa/step-up',
    { token: mfa.body.access, body: { webauthn: passkey.assert(await signInOptions(h)) } })
  t.equal(stepUp.status, 200, stepUp.text)
  t.same(claimsOf(stepUp.body.access).amr, ['pwd', 'hwk', 'mfa'])

  // The stored counter moved with each use (it is in the sealed record: the factor list shows the passkey).
  const listed = await h.request('GET', '/auth/mfa', { token: alone.body.access })
  t.same(listed.body.factors.map((f: any) => f.type).sort(), ['recovery_codes', 'webauthn'])

  // A second passkey, from the session that used the first: the first is excluded; its challenge works once.
  const spare = new SoftAuthenticator({ origin: 'http://localhost:9090', rpId: RP_ID })
  const spareOptions = await h.request('POST', '/auth/mfa/webauthn/register/options', { token: alone.body.access })
  t.same(spareOptions.body.excludeCredentials.map((c: any) => c.id), [passkey.id], 'the first passkey is excluded')
  const spareResponse = spare.register(spareOptions.body)
  const spareAdded = await h.request('POST', '/auth/mfa/webauthn/register/verify', { token: alone.body.access, body: spareResponse })
  t.equal(spareAdded.status, 200, spareAdded.text)
  t.equal(spareAdded.body.recovery_codes, undefined, 'recovery codes only with a first factor')
  const spareReplayed = await h.request('POST', '/auth/mfa/webauthn/register/verify', { token: alone.body.access, body: spareResponse })
  t.equal(spareReplayed.status, 401)
  t.equal(spareReplayed.body.code, 'passkey_invalid', 'a registration answers its challenge once')
  t.equal((await h.request('DELETE', `/auth/mfa/${spareAdded.body.factor_id}`, { token: alone.body.access })).status, 204)

  // Removed with a fresh factor: the next password login is a password login again.
  const removed = await h.request('DELETE', `/auth/mfa/${verified.body.factor_id}`, { token: alone.body.access })
  t.equal(removed.status, 204, removed.text)
  t.equal(events(lines, 'mfa_removed').at(-1)?.type, 'webauthn')
  t.equal((await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })).status, 200)
  t.equal((await h.request('POST', '/auth/webauthn/verify', { body: passkey.assert(await signInOptions(h)) })).body.code, 'passkey_invalid',
    'a removed passkey signs in no more')
})

t.test('passkey refusals: RP ID, origin, counter, unknown credential, shapes, user verification', async (t) => {
  const { stream, lines } = captureLogLines()
  const h = await build(t, {
    env: { MFA_ENCRYPTION_KEY: mfaKey(), WEBAUTHN_RP_ID: RP_ID, WEBAUTHN_ORIGINS: ORIGIN, LOCKOUT_THRESHOLD: '50' },
    logger: { level: 'info', stream }
  })
  const passkey = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID })
  const alice = await h.login('alice')

  // Registration refusals: another RP ID, another origin, another user's challenge.
  const bends = [[{ rpId: 'evil.example' }, 'another RP ID'], [{ origin: 'http://evil.example' }, 'another origin']] as const
  for (const [bend, what] of bends) {
    const options = await h.request('POST', '/auth/mfa/webauthn/register/options', { token: alice.access })
    const refused = await h.request('POST', '/auth/mfa/webauthn/register/verify',
      { token: alice.access, body: passkey.register(options.body, bend) })
    t.equal(refused.status, 401, `registration from ${what}`)
    t.equal(refused.body.code, 'passkey_invalid')
  }
  const bob = await h.login('bob')
  const bobOptions = await h.request('POST', '/auth/mfa/webauthn/register/options', { token: bob.access })
  const stolen = await h.request('POST', '/auth/mfa/webauthn/register/verify',
    { token: alice.access, body: passkey.register(bobOptions.body) })
  t.equal(stolen.body.code, 'passkey_invalid', 'a challenge issued to bob registers nothing for alice')
  t.equal(directoryOf(h.users).factors(ALICE).length, 0, 'nothing stored')
  await registered(h, alice.access, passkey)

  const refusedWith = async (body: unknown, what: string, code = 'passkey_invalid', status = 401): Promise<void> => {
    const res = await h.request('POST', '/auth/webauthn/verify', { body })
    t.equal(res.status, status, `${what}: ${status}`)
    t.equal(res.body.code, code, `${what}: ${code}`)
  }
  await refusedWith(passkey.assert(await signInOptions(h), { rpId: 'evil.example' }), 'an assertion for another RP ID')
  await refusedWith(passkey.assert(await signInOptions(h), { origin: 'http://localhost:9999' }), 'an assertion from another origin')
  await refusedWith(passkey.assert(await signInOptions(h), { userVerified: false }), 'a passkey alone without user verification')
  await refusedWith(passkey.assert({ challenge: 'A'.repeat(43) }), 'a challenge the gateway never issued')
  await refusedWith(passkey.assert(await signInOptions(h), { userHandle: null }), 'no user handle (not discoverable)')
  const stranger = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID })
  stranger.register({ challenge: 'x', user: { id: Buffer.from(ALICE).toString('base64url') } })
  await refusedWith(stranger.assert(await signInOptions(h)), 'an unknown credential claiming alice')

  // The counter: a good sign-in moves it to 5; 5 again, or 3, is a cloned authenticator.
  const good = await h.request('POST', '/auth/webauthn/verify', { body: passkey.assert(await signInOptions(h), { counter: 5 }) })
  t.equal(good.status, 200, good.text)
  await refusedWith(passkey.assert(await signInOptions(h), { counter: 5 }), 'the same counter again')
  await refusedWith(passkey.assert(await signInOptions(h), { counter: 3 }), 'a counter going back')
  const regressed = events(lines, 'passkey_counter_regressed')
  t.equal(regressed.length, 2, 'each is the event passkey_counter_regressed')
  t.same([regressed[0]?.counter, regressed[0]?.stored, regressed[0]?.user_id], [5, 5, ALICE])
  t.equal((await h.request('POST', '/auth/webauthn/verify', { body: passkey.assert(await signInOptions(h), { counter: 6 }) })).status, 200,
    'the real authenticator, moving on, still signs in')

  // Bodies that are no AuthenticationResponseJSON: 400 before anything is looked at.
  await refusedWith({}, 'an empty body', 'invalid_request', 400)
  const noResponse = { id: passkey.id, rawId: passkey.id, type: 'public-key', clientExtensionResults: {} }
  await refusedWith(noResponse, 'no response member', 'invalid_request', 400)
  const wrongType = { ...passkey.assert(await signInOptions(h)), type: 'password' }
  await refusedWith(wrongType, 'type not public-key', 'invalid_request', 400)
  const garbage = passkey.assert(await signInOptions(h))
  garbage.response.clientDataJSON = 'bm90IGpzb24'
  await refusedWith(garbage, 'clientDataJSON that is not JSON')

  // As a second step, a wrong assertion is a wrong code: mfa_code_invalid, counted.
  const password = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  const stepOptions = await signInOptions(h, { mfa_token: password.body.mfa_token })
  const wrong = await h.request('POST', '/auth/mfa/verify', {
    body: { mfa_token: password.body.mfa_token, webauthn: passkey.assert(stepOptions, { origin: 'http://evil.example' }) }
  })
  t.equal(wrong.status, 401)
  t.equal(wrong.body.code, 'mfa_code_invalid')
  const notResponse = await h.request('POST', '/auth/mfa/verify', { body: { mfa_token: password.body.mfa_token, webauthn: { id: 'x' } } })
  t.equal(notResponse.status, 400, 'a webauthn member that is no response is 400')
  t.equal((await h.request('POST', '/auth/webauthn/options', { body: { mfa_token: 'A'.repeat(43) } })).body.code, 'mfa_token_invalid')
  t.ok(events(lines, 'mfa_failed').some((e) => e.user_id === ALICE && typeof e.attempt === 'number'), 'failures count in the lockout')
})

t.test('a passkey sign-in answers as /auth/login: cookie mode with fingerprint, DPoP binding; the lockout holds', async (t) => {
  const h = await build(t, {
    env: { MFA_ENCRYPTION_KEY: mfaKey(), WEBAUTHN_RP_ID: RP_ID, WEBAUTHN_ORIGINS: ORIGIN, COOKIE_SECURE: 'false', LOCKOUT_THRESHOLD: '3' }
  })
  const passkey = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID })
  await registered(h, (await h.login('alice')).access, passkey)

  // The OpenAPI document has the passkey routes with the WebAuthn JSON forms.
  const doc = (await h.request('GET', '/docs/json')).body as { paths: Record<string, Record<string, any>> }
  for (const path of ['/auth/mfa/webauthn/register/options', '/auth/mfa/webauthn/register/verify', '/auth/webauthn/options',
    '/auth/webauthn/verify']) t.ok(doc.paths[path]?.post !== undefined, `OpenAPI: POST ${path}`)
  const verifyBody = doc.paths['/auth/webauthn/verify']?.post.requestBody.content['application/json'].schema
  t.match(verifyBody.description, /AuthenticationResponseJSON/, 'its body is described as AuthenticationResponseJSON')

  const cookie = await h.request('POST', '/auth/webauthn/verify', { body: passkey.assert(await signInOptions(h, { cookie: true })) })
  t.equal(cookie.status, 200, cookie.text)
  t.equal(cookie.body.refresh, undefined, 'cookie mode: no refresh token in the body')
  t.equal(setCookieOf(cookie, 'refresh_token')?.attributes.httponly, '', 'the refresh cookie, HttpOnly')
  t.ok(setCookieOf(cookie, 'gw_fgp') !== undefined, 'the fingerprint cookie')
  t.type(claimsOf(cookie.body.access).fgp, 'string')

  const key = await dpopKey()
  const url = `${h.url}/auth/webauthn/verify`
  const bound = await h.request('POST', '/auth/webauthn/verify', {
    body: passkey.assert(await signInOptions(h)),
    headers: { dpop: await key.proof({ method: 'POST', url }) }
  })
  t.equal(bound.status, 200, bound.text)
  t.equal(bound.body.token_type, 'DPoP')
  t.same(claimsOf(bound.body.access).cnf, { jkt: key.jkt })
  const badProof = await h.request('POST', '/auth/webauthn/verify', {
    body: passkey.assert(await signInOptions(h)),
    headers: { dpop: await key.proof({ method: 'POST', url: `${h.url}/auth/login` }) }
  })
  t.equal(badProof.body.code, 'invalid_dpop_proof', 'a proof for another URL is refused')

  // Failed assertions count like failed logins: past the threshold even the right one waits.
  for (let i = 0; i < 3; i++) {
    const body = passkey.assert(await signInOptions(h), { origin: 'http://evil.example' })
    const res = await h.request('POST', '/auth/webauthn/verify', { body })
    t.equal(res.body.code, 'passkey_invalid')
  }
  const locked = await h.request('POST', '/auth/webauthn/verify', { body: passkey.assert(await signInOptions(h)) })
  t.equal(locked.status, 429)
  t.equal(locked.body.code, 'account_locked')
})

t.test('without WEBAUTHN_RP_ID there are no passkey routes', async (t) => {
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey() } })
  t.equal((await h.request('POST', '/auth/webauthn/options', { body: {} })).status, 404)
  const alice = await h.login('alice')
  t.equal((await h.request('POST', '/auth/mfa/webauthn/register/options', { token: alice.access })).status, 404)
})
