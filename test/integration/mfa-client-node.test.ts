/**
 * The auth client's second-factor surface (docs/mfa.md) on Node, memory mode, against a real
 * gateway: `mfa_required` as an AuthError with its token, `verifyMfa`, the step-up challenge of a
 * route read by `stepUpChallenge`, and `stepUp`. Codes come from Debian's pyotp. Passkeys:
 * `passkeyOptions`, `loginWithPasskey` and `verifyMfa` with `{ webauthn }`, answered by the software
 * authenticator of test/helpers/soft-authenticator.ts.
 */
import t from 'tap'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from '../helper.js'
import { claimsOf } from '../helpers/auth.js'
import { freshStep, mfaKey, pyotpMissing, totpAt } from '../helpers/pyotp.js'
import { SoftAuthenticator } from '../helpers/soft-authenticator.js'
import { ROUTE_TABLE } from '../../src/proxy/route-table.js'
import { buildClient } from '../../scripts/build-client.mjs'
import type * as ClientModule from '../../client/src/index.js'

const DIST = join(import.meta.dirname, '..', '..', 'dist')
await buildClient({ outDir: DIST })
const {
  createAuthClient,
  AuthError,
  stepUpChallenge
} = await import(pathToFileURL(join(DIST, 'client', 'auth-client.js')).href) as typeof ClientModule

t.test('the client completes a two-step login and steps up for a route', { skip: pyotpMissing() ?? false }, async (t) => {
  const routes = ROUTE_TABLE.map((r) => r.path === '/api/orders' ? { ...r, stepUpMaxAge: 120 } : r)
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey() }, routes })
  const step = await freshStep()
  const password = await h.login('alice')
  const started = await h.request('POST', '/auth/mfa/totp', { token: password.access })
  const secret: string = started.body.secret
  t.equal(
    (await h.request(
      'POST',
      '/auth/mfa/totp/confirm',
      { token: password.access, body: { factor_id: started.body.factor_id, code: totpAt(secret, step - 1) } }
    )).status,
    200
  )

  const auth = createAuthClient({ baseUrl: h.url, mode: 'memory' })
  t.teardown(() => auth.close())
  const refused = await auth.login('alice', 'alice-password').then(() => null, (err: unknown) => err)
  t.ok(refused instanceof AuthError, 'the login rejects with an AuthError')
  const error = refused as InstanceType<typeof AuthError>
  t.equal(error.code, 'mfa_required')
  t.equal(error.status, 403)
  t.match(error.mfaToken, /^[A-Za-z0-9_-]{43}$/)
  t.same(error.methods, ['totp', 'recovery_code'])
  t.equal(auth.user(), null, 'not signed in yet')

  const wrong = await auth.verifyMfa(error.mfaToken!, { code: totpAt(secret, step + 9) }).then(() => null, (err: unknown) => err)
  t.equal((wrong as InstanceType<typeof AuthError>).code, 'mfa_code_invalid')
  const user = await auth.verifyMfa(error.mfaToken!, { code: totpAt(secret, step) })
  t.equal(user.username, 'alice')
  t.equal((await auth.fetch('/api/orders')).status, 200, 'a fresh second factor opens the step-up route')

  // A password-only session meets the challenge, steps up, and gets through.
  const other = createAuthClient({ baseUrl: h.url, mode: 'memory' })
  t.teardown(() => other.close())
  await other.login('bob', 'bob-password')
  const challenged = await other.fetch('/api/orders')
  t.same(stepUpChallenge(challenged), { maxAge: 120 }, 'the challenge names max_age')
  t.equal(stepUpChallenge(await other.fetch('/api/users/me')), null, 'no challenge on a plain answer')
  const noFactor = await other.stepUp({ code: '123456' }).then(() => null, (err: unknown) => err)
  t.equal((noFactor as InstanceType<typeof AuthError>).code, 'mfa_code_invalid', 'bob has no factor to step up with')

  // A signed-in session steps up with another code: the client keeps working with the new token.
  const before = auth.expiresAt()
  await auth.stepUp({ code: totpAt(secret, step + 1) })
  t.ok(auth.expiresAt()! >= before!, 'a new access token')
  t.equal(auth.user()?.username, 'alice', 'the same user')
  t.equal((await auth.fetch('/api/orders')).status, 200)
  const replay = await auth.stepUp({ code: totpAt(secret, step + 1) }).then(() => null, (err: unknown) => err)
  t.equal((replay as InstanceType<typeof AuthError>).code, 'mfa_code_invalid', 'the same code does not step up twice')
  t.type(claimsOf(password.access).amr, Array)
})

t.test('the client signs in with a passkey alone and uses one as the second step', async (t) => {
  const origin = 'http://localhost:8080'
  const h = await build(t, { env: { MFA_ENCRYPTION_KEY: mfaKey(), WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: origin } })
  const passkey = new SoftAuthenticator({ origin, rpId: 'localhost' })
  const { access } = await h.login('alice')
  const options = await h.request('POST', '/auth/mfa/webauthn/register/options', { token: access })
  const registered = await h.request('POST', '/auth/mfa/webauthn/register/verify',
    { token: access, body: passkey.register(options.body) })
  t.equal(registered.status, 200, registered.text)

  const auth = createAuthClient({ baseUrl: h.url, mode: 'memory' })
  t.teardown(() => auth.close())
  const user = await auth.loginWithPasskey(passkey.assert(await auth.passkeyOptions() as { challenge: string }))
  t.equal(user.username, 'alice', 'signed in with the passkey alone')
  t.equal((await auth.fetch('/api/users/me')).status, 200)
  const replayed = await auth.loginWithPasskey(passkey.assert({ challenge: 'A'.repeat(43) })).then(() => null, (err: unknown) => err)
  t.equal((replayed as InstanceType<typeof AuthError>).code, 'passkey_invalid', 'a refusal is an AuthError')

  // The access token the client sends, seen by its fetch.
  let sent = ''
  const recording = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init)
    sent = request.headers.get('authorization') ?? sent
    return await fetch(request)
  }
  const second = createAuthClient({ baseUrl: h.url, mode: 'memory', fetch: recording })
  t.teardown(() => second.close())
  const required = await second.login('alice', 'alice-password')
    .then(() => null, (err: unknown) => err) as InstanceType<typeof AuthError>
  t.same(required.methods, ['webauthn', 'recovery_code'])
  const stepOptions = await second.passkeyOptions({ mfaToken: required.mfaToken! }) as
    { challenge: string, allowCredentials: Array<{ id: string }> }
  t.same(stepOptions.allowCredentials.map((c) => c.id), [passkey.id])
  t.equal((await second.verifyMfa(required.mfaToken!, { webauthn: passkey.assert(stepOptions) })).username, 'alice')
  t.equal((await second.fetch('/api/users/me')).status, 200)
  t.same(claimsOf(sent.replace(/^Bearer /, '')).amr, ['pwd', 'hwk', 'mfa'], 'password and passkey')
})

