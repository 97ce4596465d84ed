/**
 * Passkeys and the second-factor screens of the demo page in a real browser (Debian chromium,
 * playwright-core) with the DevTools virtual authenticator (CTAP2, resident keys, user
 * verification) through a CDP session: a passkey registered on the page, Redis flushed, a sign-in
 * with the passkey alone, then as the second step after a password, a recovery code shown once and
 * used once; an authenticator app enrolled on the page (QR code, codes from Debian's pyotp).
 * The page is opened as http://localhost:<port> (test/helpers/passkeys-browser.ts). Screenshots go
 * to test/artifacts/.
 */
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { build } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { launchBrowser, screenshot, pageErrors } from '../helpers/browser.js'
import { localhostForwarder, virtualAuthenticator } from '../helpers/passkeys-browser.js'
import { freshStep, mfaKey, pyotpMissing, totpAt } from '../helpers/pyotp.js'
import { directoryOf } from '../../services/users/app.js'
import { buildClient } from '../../scripts/build-client.mjs'

await buildClient()
t.setTimeout(240_000)

const WAIT = { timeout: 30_000 }
const ALICE = '1001'

async function status (page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (expected) => (globalThis as any).document.getElementById('status')?.textContent === expected,
    text,
    WAIT
  )
}

async function factorTypes (page: Page, types: string): Promise<void> {
  await page.waitForFunction(
    (expected) => (globalThis as any).document.getElementById('factors-status')?.dataset.types === expected,
    types,
    WAIT
  )
}

async function signOut (page: Page): Promise<void> {
  await page.locator('#logout').click()
  await status(page, 'Signed out.')
}

async function passwordStep (page: Page): Promise<void> {
  await page.locator('#login-form input[name=username]').fill('alice')
  await page.locator('#login-form input[name=password]').fill('alice-password')
  await page.locator('#login-form button[type=submit]').click()
  await page.locator('#mfa-form').waitFor({ state: 'visible', ...WAIT })
}

/** A gateway with passkeys for http://localhost:<port>, chromium with a virtual authenticator, the demo page open. */
async function demo (t: Test) {
  const forward = await localhostForwarder(t)
  const origin = `http://localhost:${forward.port}`
  const h = await build(t, {
    env: { ...RELAXED_LIMITS, DEMO_PAGE: 'true', MFA_ENCRYPTION_KEY: mfaKey(), WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: origin }
  })
  forward.target(Number(new URL(h.url).port))

  const browser = await launchBrowser(t)
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } })
  const page = await context.newPage()
  const problems = pageErrors(page)

  const { cdp, authenticatorId } = await virtualAuthenticator(context, page)

  await page.goto(`${origin}/demo/`)
  await page.locator('#login-form input[name=username]').fill('alice')
  await page.locator('#login-form input[name=password]').fill('alice-password')
  await page.locator('#login-form button[type=submit]').click()
  await status(page, 'Signed in as alice.')
  await factorTypes(page, '')
  return { h, page, cdp, authenticatorId, problems }
}

t.test('the demo page: a passkey registered, Redis flushed, signed in with it alone and after a password', async (t) => {
  const { h, page, cdp, authenticatorId, problems } = await demo(t)

  // Registration through the page.
  await page.locator('#passkey-register').click()
  await factorTypes(page, 'recovery_codes,webauthn')
  t.pass('the page registered a passkey')
  const codes = await page.locator('#recovery-codes li').allTextContents()
  t.equal(codes.length, 10, 'the recovery codes are shown once')
  await screenshot(page, 'demo-passkey-registered')
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
  t.equal(credentials.length, 1, 'the virtual authenticator holds one credential')
  t.equal(credentials[0]?.isResidentCredential, true, 'a discoverable credential')
  t.equal(credentials[0]?.rpId, 'localhost')
  t.equal(Buffer.from(credentials[0]?.userHandle ?? '', 'base64').toString(), ALICE, 'its user handle is the user id')
  t.same(directoryOf(h.users).factors(ALICE).map((r) => r.type).sort(), ['recovery_codes', 'webauthn'], 'kept by the identity backend')

  await signOut(page)
  await h.redis.flushAll()

  // The passkey alone.
  await page.locator('#passkey-login').click()
  await status(page, 'Signed in as alice.')
  t.pass('signed in with the passkey alone, after a Redis flush')
  await screenshot(page, 'demo-passkey-signed-in')
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
  t.ok((after.credentials[0]?.signCount ?? 0) > (credentials[0]?.signCount ?? 0), 'the authenticator counted the use')
  await signOut(page)

  // After a password: the second step offers the passkey.
  await passwordStep(page)
  t.ok(await page.locator('#mfa-passkey').isVisible(), 'the second step offers the passkey')
  await screenshot(page, 'demo-passkey-second-step')
  await page.locator('#mfa-passkey').click()
  await status(page, 'Signed in as alice.')
  t.pass('signed in with password and passkey')
  await signOut(page)

  // A recovery code instead, once.
  await passwordStep(page)
  await page.locator('#mfa-code').fill(codes[0] ?? '')
  await page.locator('#mfa-form button[type=submit]').click()
  await status(page, 'Signed in as alice.')
  t.pass('signed in with password and a recovery code')
  await page.waitForFunction(
    () => /recovery codes \(9 left\)/.test((globalThis as any).document.getElementById('factors-status')?.textContent ?? ''),
    undefined,
    WAIT
  )
  t.pass('nine recovery codes left')
  await signOut(page)

  await passwordStep(page)
  await page.locator('#mfa-code').fill(codes[0] ?? '')
  await page.locator('#mfa-form button[type=submit]').click()
  await page.getByText('That did not match; try again.').waitFor(WAIT)
  t.pass('a used recovery code is refused')
  await screenshot(page, 'demo-mfa-refused')
  t.same(problems, [], 'no page errors')
})

t.test('the demo page: an authenticator app enrolled (QR code), then a sign-in with its code', {
  skip: pyotpMissing() ?? false
}, async (t) => {
  const { page, problems } = await demo(t)
  await page.locator('#totp-start').click()
  await page.locator('#totp-qr svg').waitFor(WAIT)
  t.pass('the QR code is shown')
  const secret = (await page.locator('#totp-secret').textContent()) ?? ''
  t.match(secret, /^[A-Z2-7]{16,}$/, 'and the key for typing')
  await screenshot(page, 'demo-totp-enrol')
  const step = await freshStep(20)
  await page.locator('#totp-code').fill(totpAt(secret, step - 1))
  await page.locator('#totp-form button[type=submit]').click()
  await factorTypes(page, 'recovery_codes,totp')
  t.equal(await page.locator('#recovery-codes li').count(), 10, 'the recovery codes are shown once')
  await screenshot(page, 'demo-totp-recovery-codes')
  await signOut(page)

  await passwordStep(page)
  t.ok(await page.locator('#mfa-passkey').isHidden(), 'no passkey offered to a user without one')
  await page.locator('#mfa-code').fill(totpAt(secret, step))
  await page.locator('#mfa-form button[type=submit]').click()
  await status(page, 'Signed in as alice.')
  t.pass('signed in with password and a pyotp code')
  t.same(problems, [], 'no page errors')
})
