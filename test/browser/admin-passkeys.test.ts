/**
 * Passkeys on the dashboard (docs/mfa.md#passkeys), in Chromium with the DevTools virtual
 * authenticator: an admin adds a passkey (recovery codes shown once), Redis is flushed, the admin
 * signs in with the passkey alone, then with the password and the passkey as second step.
 * Screenshots go to test/artifacts/.
 */
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { build } from '../helper.js'
import { launchBrowser, screenshot, signInToDashboard, pageErrors } from '../helpers/browser.js'
import { localhostForwarder, virtualAuthenticator } from '../helpers/passkeys-browser.js'
import { mfaKey } from '../helpers/pyotp.js'
import { directoryOf } from '../../services/users/app.js'

execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'build-web.mjs')], { stdio: 'inherit' })

const WAIT = { timeout: 15_000 }

/**
 * A gateway with passkeys for http://localhost:<port> (an RP ID cannot be an IP address), reached
 * through the forwarder, and a Chromium page with a virtual authenticator.
 */
async function passkeyDashboard (t: Test, env: Record<string, string> = {}) {
  const forward = await localhostForwarder(t)
  const h = await build(t, {
    env: { COOKIE_SECURE: 'false', MFA_ENCRYPTION_KEY: mfaKey(), WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: forward.origin, ...env }
  })
  forward.target(Number(new URL(h.url).port))
  const browser = await launchBrowser(t)
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  const { cdp, authenticatorId } = await virtualAuthenticator(context, page)
  return { forward, h, page, cdp, authenticatorId, problems: pageErrors(page) }
}

t.test('an admin adds a passkey on the dashboard and signs in with it, alone and after the password', async (t) => {
  const { forward, h, page, cdp, authenticatorId, problems } = await passkeyDashboard(t)

  await page.goto(`${forward.origin}/admin/`)
  await signInToDashboard(page)
  await page.getByText('Live events').waitFor(WAIT)
  await page.getByRole('button', { name: 'Add a passkey' }).click()
  await page.locator('#passkey-added').waitFor({ state: 'visible', ...WAIT })
  t.equal(await page.locator('#recovery-codes li').count(), 10, 'a first factor comes with ten recovery codes')
  await screenshot(page, 'admin-passkey-added')
  t.equal((await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.length, 1, 'the authenticator holds the passkey')
  t.ok(directoryOf(h.users).factors('1003').some((r) => r.type === 'webauthn'), 'the identity backend keeps it')

  await page.locator('#sign-out').click()
  await page.locator('#sign-in').waitFor({ state: 'visible', ...WAIT })
  await h.redis.flushAll()

  await page.getByRole('button', { name: 'Passkey (no password)' }).click()
  await page.getByText('Live events').waitFor(WAIT)
  // The live feed is an admin API: the passkey session is an admin session.
  await page.locator('#feed-status', { hasText: 'live' }).waitFor(WAIT)
  t.pass('signed in with the passkey alone, after a Redis flush')
  await screenshot(page, 'admin-passkey-signed-in')

  await page.locator('#sign-out').click()
  await page.locator('#sign-in').waitFor({ state: 'visible', ...WAIT })
  await signInToDashboard(page)
  await page.getByRole('button', { name: 'Use a passkey' }).waitFor(WAIT)
  await screenshot(page, 'admin-passkey-second-step')
  await page.getByRole('button', { name: 'Use a passkey' }).click()
  await page.getByText('Live events').waitFor(WAIT)
  await page.locator('#feed-status', { hasText: 'live' }).waitFor(WAIT)
  t.pass('signed in with the password and the passkey')
  t.same(problems, [], 'no page errors')
})

t.test('ADMIN_MFA=required: an admin without a factor adds a passkey on the factor screen and continues with it', async (t) => {
  const { forward, page, problems } = await passkeyDashboard(t, { ADMIN_MFA: 'required' })

  await page.goto(`${forward.origin}/admin/`)
  await signInToDashboard(page)
  await page.getByText('your account has none yet').waitFor(WAIT)
  t.ok(await page.locator('#dashboard').isHidden(), 'the dashboard waits for a factor')
  await page.getByRole('button', { name: 'Add a passkey' }).click()
  await page.getByRole('button', { name: 'Continue with a passkey' }).waitFor(WAIT)
  t.equal(await page.locator('#recovery-codes li').count(), 10, 'recovery codes shown once')
  await screenshot(page, 'admin-passkey-required-continue')
  await page.getByRole('button', { name: 'Continue with a passkey' }).click()
  await page.locator('#feed-status', { hasText: 'live' }).waitFor(WAIT)
  t.pass('after the passkey step-up the admin APIs answer')
  t.same(problems, [], 'no page errors')
})
