/**
 * The security dashboard in a real browser (Debian chromium driven by playwright-core), against a
 * listening gateway on real Redis: an admin signs in, sees another client's failed login arrive
 * on the live feed, revokes a user's session (whose next proxied request is 401), lifts a lockout
 * (and the user logs in again); a non-admin gets no data (403 on every API call). Screenshots at
 * 1280x800 and at a phone's 390x844 go to test/artifacts/.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import type { Page, Response } from 'playwright-core'
import { build } from '../helper.js'
import { launchBrowser, pageErrors, screenshot, signInToDashboard } from '../helpers/browser.js'
import { loginCall } from '../helpers/abuse.js'

// The gateway serves what `npm run build:web` produced: build it from the current sources.
execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'build-web.mjs')], { stdio: 'inherit' })

/** Generous: the feed's goal is 2 s, but a test waits for the condition, it does not time it. */
const WAIT = { timeout: 15_000 }

async function signIn (page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(`${url}/admin/`)
  await signInToDashboard(page, username, password)
}

t.test('an admin watches, revokes and lifts from the dashboard', async (t) => {
  const h = await build(t, { env: { COOKIE_SECURE: 'false', UPSTREAM_TIMEOUT_MS: '60000' } })
  const browser = await launchBrowser(t)
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  const problems = pageErrors(page, { console: true })

  const doc = await page.goto(`${h.url}/admin/`)
  const csp = doc?.headers()['content-security-policy'] ?? ''
  t.match(csp, /script-src 'self'/, 'CSP: scripts from the gateway only')
  t.match(csp, /connect-src 'self'/, "CSP: connect-src 'self'")
  t.notMatch(csp, /unsafe-inline|unsafe-eval/, 'CSP: nothing inline')

  await signIn(page, h.url, 'admin', 'admin-password')
  await page.getByText('Live events').waitFor(WAIT)
  await page.locator('#feed-status', { hasText: 'live' }).waitFor(WAIT)
  t.pass('the admin is signed in and the feed is live')

  // Another client fails to log in: it shows up on the feed.
  t.equal((await loginCall(h.url, 'bob', 'not-his-password', { from: '127.0.0.7' })).status, 401)
  const failure = page.locator('#feed li[data-event="login_failed"]', { hasText: '127.0.0.7' })
  await failure.waitFor(WAIT)
  t.pass('the failed login of another client is on the feed')
  t.notMatch(await page.locator('#feed').innerText(), /not-his-password/, 'never its password')

  // Revoke alice's session: her next proxied request is refused.
  const alice = await h.login('alice')
  t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 200, 'alice works before')
  await page.getByLabel('Name or id').fill(alice.user.id)
  await page.getByRole('button', { name: 'Search' }).click()
  await page.locator('#user-result .user-head', { hasText: 'id 1001' }).waitFor(WAIT)
  const sessions = page.locator('#user-result li[data-session]')
  t.equal(await sessions.count(), 1, 'one session listed')
  await sessions.getByRole('button', { name: 'Revoke' }).click()
  await page.getByText('No active sessions.').waitFor(WAIT)
  const refused = await h.request('GET', '/api/orders', { token: alice.access })
  t.equal(refused.status, 401, "alice's next proxied request is 401")
  t.equal(refused.body.code, 'token_revoked')

  // Lock bob out from one address, then lift it.
  for (let i = 0; i < 5; i++) t.equal((await loginCall(h.url, 'bob', `guess-${i}`, { from: '127.0.0.8' })).status, 401)
  t.equal((await loginCall(h.url, 'bob', 'bob-password', { from: '127.0.0.8' })).status, 429, 'bob is locked out on 127.0.0.8')
  const lock = page.locator('#blocks li', { hasText: 'Lockout: bob from 127.0.0.8' })
  await lock.waitFor(WAIT)
  t.pass('the lockout is listed with the username')
  await screenshot(page, 'admin-dashboard-1280x800')
  await page.setViewportSize({ width: 390, height: 844 })
  await screenshot(page, 'admin-dashboard-390x844')
  await page.setViewportSize({ width: 1280, height: 800 })

  await lock.getByRole('button', { name: 'Lift' }).click()
  await lock.waitFor({ state: 'detached', ...WAIT })
  t.equal((await loginCall(h.url, 'bob', 'bob-password', { from: '127.0.0.8' })).status, 200, 'bob logs in again')
  t.same(problems, [], 'no script errors and no CSP violations in the page')
})

t.test('a non-admin who opens /admin/ gets no data: every API call is 403', async (t) => {
  const h = await build(t, { env: { COOKIE_SECURE: 'false' } })
  await loginCall(h.url, 'bob', 'wrong', { from: '127.0.0.9' })
  const browser = await launchBrowser(t)
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } })
  const apiAnswers: Response[] = []
  page.on('response', (r) => { if (new URL(r.url()).pathname.match(/^\/admin\/(events|blocks|users)/) !== null) apiAnswers.push(r) })

  await signIn(page, h.url, 'alice', 'alice-password')
  await page.getByText('No access').waitFor(WAIT)
  t.ok(apiAnswers.length >= 3, `the page asked the API (${apiAnswers.length} calls)`)
  t.same([...new Set(apiAnswers.map((r) => r.status()))], [403], 'every one was 403')
  t.ok(await page.locator('#dashboard').isHidden(), 'the dashboard stays hidden')
  t.equal(await page.locator('#feed li').count(), 0, 'no event is shown')
  await screenshot(page, 'admin-dashboard-non-admin-390x844')
})
