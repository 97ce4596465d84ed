/**
 * The dashboard with second factors (docs/mfa.md), in Chromium: an admin with TOTP signs in in two
 * steps (the code from Debian's pyotp), sees a user's factors and resets them. Screenshots go to
 * test/artifacts/.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { build, type Harness } from '../helper.js'
import { launchBrowser, screenshot, signInToDashboard, pageErrors } from '../helpers/browser.js'
import { freshStep, mfaKey, pyotpMissing, totpAt } from '../helpers/pyotp.js'
import { directoryOf } from '../../services/users/app.js'

execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'build-web.mjs')], { stdio: 'inherit' })

const WAIT = { timeout: 15_000 }

async function enrol (h: Harness, username: string, step: number): Promise<string> {
  const { access } = await h.login(username)
  const started = await h.request('POST', '/auth/mfa/totp', { token: access })
  const confirmed = await h.request(
    'POST',
    '/auth/mfa/totp/confirm',
    { token: access, body: { factor_id: started.body.factor_id, code: totpAt(started.body.secret, step - 1) } }
  )
  if (confirmed.status !== 200) throw new Error(`enrolment of ${username}: ${confirmed.status}`)
  return started.body.secret as string
}

t.test('an admin with TOTP signs in in two steps and resets a user\'s factors', { skip: pyotpMissing() ?? false }, async (t) => {
  const h = await build(t, { env: { COOKIE_SECURE: 'false', MFA_ENCRYPTION_KEY: mfaKey() } })
  const step = await freshStep(20)
  const adminSecret = await enrol(h, 'admin', step)
  await enrol(h, 'alice', step)

  const browser = await launchBrowser(t)
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
  const problems = pageErrors(page)

  await page.goto(`${h.url}/admin/`)
  await signInToDashboard(page)
  await page.getByText('Enter the code from your authenticator app').waitFor(WAIT)
  t.pass('the password step asks for a code')
  await screenshot(page, 'admin-mfa-code-step')
  await page.getByLabel('Authenticator or recovery code').fill(totpAt(adminSecret, step))
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByText('Live events').waitFor(WAIT)
  t.pass('signed in with the second factor')

  await page.getByLabel('Name or id').fill('alice')
  await page.getByRole('button', { name: 'Search' }).click()
  await page.locator('#user-result .factors', { hasText: 'Second factors: totp, recovery codes (10 left)' }).waitFor(WAIT)
  t.pass('the user\'s factors are shown')
  await screenshot(page, 'admin-mfa-user-factors')
  await page.getByRole('button', { name: 'Reset second factors' }).click()
  await page.locator('#user-result .factors', { hasText: 'No second factor.' }).waitFor(WAIT)
  t.same(directoryOf(h.users).factors('1001'), [], 'the identity backend has none left')
  t.equal(
    (await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })).status,
    200,
    'alice logs in with her password'
  )
  t.same(problems, [], 'no page errors')
})

t.test('an admin enrols an authenticator app on the dashboard: QR code, then recovery codes once', { skip: pyotpMissing() ?? false },
  async (t) => {
  const h = await build(t, { env: { COOKIE_SECURE: 'false', MFA_ENCRYPTION_KEY: mfaKey() } })
  const browser = await launchBrowser(t)
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
  const problems = pageErrors(page, { console: true })

  await page.goto(`${h.url}/admin/`)
  await signInToDashboard(page)
  await page.getByText('Live events').waitFor(WAIT)
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click()
  const qr = page.locator('#totp-qr svg')
  await qr.waitFor(WAIT)
  t.ok((await qr.boundingBox())!.width >= 150, 'the QR code is drawn')
  const secret = (await page.locator('#totp-secret').innerText()).trim()
  t.match(secret, /^[A-Z2-7]{32}$/, 'the key is shown for typing')
  await screenshot(page, 'admin-mfa-enrol-qr')
  const step = await freshStep()
  await page.getByLabel('Code from the app').fill(totpAt(secret, step))
  await page.getByRole('button', { name: 'Confirm' }).click()
  await page.locator('#recovery-codes li').first().waitFor(WAIT)
  t.equal(await page.locator('#recovery-codes li').count(), 10, 'ten recovery codes are shown')
  await screenshot(page, 'admin-mfa-recovery-codes')
  const login = await h.request('POST', '/auth/login', { body: { username: 'admin', password: 'admin-password' } })
  t.equal(login.status, 403, 'the admin\'s next login needs the factor')
  t.same(login.body.methods, ['totp', 'recovery_code'])
  t.same(problems, [], 'no page errors, no CSP violation')
})

t.test('ADMIN_MFA=required: an admin without a factor signs in, enrols TOTP and continues', { skip: pyotpMissing() ?? false },
  async (t) => {
  const h = await build(t, { env: { COOKIE_SECURE: 'false', MFA_ENCRYPTION_KEY: mfaKey(), ADMIN_MFA: 'required' } })
  const { access } = await h.login('admin')
  t.equal((await h.request('GET', '/admin/events', { token: access })).status, 401, 'a password-only session gets no admin API')
  const browser = await launchBrowser(t)
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
  const problems = pageErrors(page)

  await page.goto(`${h.url}/admin/`)
  await signInToDashboard(page)
  await page.getByText('your account has none yet').waitFor(WAIT)
  t.ok(await page.locator('#who').isVisible(), 'still signed in')
  t.ok(await page.locator('#dashboard').isHidden(), 'the dashboard waits for the factor')
  t.ok(await page.locator('#sign-in').isHidden(), 'not sent back to the sign-in form')
  await screenshot(page, 'admin-mfa-required-enrol')
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click()
  await page.locator('#totp-qr svg').waitFor(WAIT)
  const secret = (await page.locator('#totp-secret').innerText()).trim()
  const step = await freshStep()
  await page.getByLabel('Code from the app').fill(totpAt(secret, step))
  await page.getByRole('button', { name: 'Confirm' }).click()
  await page.getByText('Enter the next code it shows').waitFor(WAIT)
  t.equal(await page.locator('#recovery-codes li').count(), 10, 'ten recovery codes are shown')
  await screenshot(page, 'admin-mfa-required-continue')
  await page.getByLabel('Second-factor code').fill(totpAt(secret, step + 1))
  await page.getByRole('button', { name: 'Continue', exact: true }).click()
  await page.locator('#counts td', { hasText: 'mfa_enrolled' }).waitFor(WAIT)
  t.pass('the dashboard shows its data: the admin APIs answer')
  await page.locator('#feed-status', { hasText: 'live' }).waitFor(WAIT)
  t.pass('the live feed is connected')
  await screenshot(page, 'admin-mfa-required-dashboard')
  t.same(problems, [], 'no page errors')
})

t.test('ADMIN_MFA=required: a session without the factor of an admin who has one asks for it', { skip: pyotpMissing() ?? false },
  async (t) => {
  const h = await build(t, { env: { COOKIE_SECURE: 'false', MFA_ENCRYPTION_KEY: mfaKey(), ADMIN_MFA: 'required' } })
  const browser = await launchBrowser(t)
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
  const problems = pageErrors(page)

  await page.goto(`${h.url}/admin/`)
  await signInToDashboard(page)
  await page.getByText('your account has none yet').waitFor(WAIT)
  // The factor is enrolled elsewhere; the browser's session (its refresh cookie) stays password-only.
  const step = await freshStep(20)
  const secret = await enrol(h, 'admin', step)
  await page.reload()
  await page.getByText('Enter the code from your authenticator app').waitFor(WAIT)
  t.ok(await page.locator('#mfa-panel').isHidden(), 'no enrolment offered: a code is asked for')
  await screenshot(page, 'admin-mfa-required-step-up')
  await page.getByLabel('Second-factor code').fill('000000')
  await page.getByRole('button', { name: 'Continue', exact: true }).click()
  await page.locator('#step-up-error', { hasText: /./ }).waitFor(WAIT)
  t.ok(await page.locator('#dashboard').isHidden(), 'a wrong code does not open the dashboard')
  await page.getByLabel('Second-factor code').fill(totpAt(secret, step))
  await page.getByRole('button', { name: 'Continue', exact: true }).click()
  await page.locator('#counts td', { hasText: 'mfa_enrolled' }).waitFor(WAIT)
  t.pass('after the step-up the admin APIs answer')
  t.same(problems, [], 'no page errors')
})
