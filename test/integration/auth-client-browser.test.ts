/**
 * The auth client in a real browser (Debian chromium via playwright-core), through the demo page
 * served by a listening gateway with 4-second access tokens: what a person does (sign in, reload,
 * open tabs, log out) and sees (the page's status and its list of requests and their statuses).
 */
import t, { type Test } from 'tap'
import type { BrowserContext, Page, Response } from 'playwright-core'
import { build, type Harness } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { launchBrowser, screenshot } from '../helpers/browser.js'
import { waitFor } from '../helpers/redis-server.js'
import { buildClient } from '../../scripts/build-client.mjs'

await buildClient()
// Chromium and three expiries per test on a shared machine: more than the suite's default per file.
t.setTimeout(480_000)

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }

interface Seen { path: string, status: number, code?: string }

/** Every answer of the gateway to the pages of a context, with the error code of the refused ones. */
function recordResponses (context: BrowserContext): Seen[] {
  const seen: Seen[] = []
  context.on('response', (response: Response) => {
    const url = new URL(response.url())
    if (!url.pathname.startsWith('/auth/') && !url.pathname.startsWith('/api/')) return
    const entry: Seen = { path: url.pathname, status: response.status() }
    seen.push(entry)
    if (response.status() >= 400) {
      response.json().then((body: { code?: string }) => { entry.code = body.code }, () => {})
    }
  })
  return seen
}

const refreshes = (seen: Seen[]) => seen.filter((s) => s.path === '/auth/refresh' && s.status === 200).length

async function status (page: Page): Promise<string> {
  return (await page.locator('#status').textContent()) ?? ''
}

async function waitForStatus (page: Page, text: string): Promise<void> {
  await page.waitForFunction((expected) => (globalThis as any).document.getElementById('status')?.textContent === expected, text,
    { timeout: 60_000 })
}

async function signIn (page: Page, username: string): Promise<void> {
  await page.locator('#login-form input[name=username]').fill(username)
  await page.locator('#login-form input[name=password]').fill(`${username}-password`)
  await page.locator('#login-form button[type=submit]').click()
  await waitForStatus(page, `Signed in as ${username}.`)
}

/** Statuses the page itself got that were not a success (the demo lists every call it makes). */
async function failuresShown (page: Page): Promise<string[]> {
  return await page.locator('#activity li[data-ok="false"]').allTextContents()
}

/**
 * GET /auth/sessions from inside a tab, through one more client of the page: it joins the tabs'
 * session (another tab hands it the token) and lists that user's sessions.
 */
async function sessionsSeenFrom (page: Page): Promise<Array<{ id: string, current: boolean }>> {
  return await page.evaluate(async () => {
    const { createAuthClient } = await import('/client/auth-client.js' as string)
    // As the demo page: the tabs' tokens are DPoP-bound to the origin's key.
    const auth = createAuthClient({ dpop: true })
    await auth.ready
    const res = await auth.fetch('/auth/sessions')
    auth.close()
    return (await res.json()).sessions
  })
}

/** Sessions of `username` other than the one this call opens to ask (GET /auth/sessions). */
async function otherSessions (h: Harness, username: string): Promise<number> {
  const { access } = await h.login(username)
  const res = await h.request('GET', '/auth/sessions', { token: access })
  await h.request('POST', '/auth/logout', { token: access })
  return (res.body.sessions as Array<{ current: boolean }>).filter((s) => !s.current).length
}

/** Clicks Reload in every tab at once, again and again, until the tabs have refreshed `count` times. */
async function fireUntilRefreshed (pages: Page[], seen: Seen[], count: number): Promise<void> {
  const start = refreshes(seen)
  await waitFor(async () => {
    await Promise.all(pages.map((page) => page.locator('#reload-orders').click()))
    return refreshes(seen) - start >= count
  }, `${count} refreshes`, 60_000)
}

async function threeTabs (t: Test, h: Harness, context: BrowserContext,
  username: string): Promise<{ pages: Page[], seen: Seen[], sessionId: string }> {
  const pages = [await context.newPage(), await context.newPage(), await context.newPage()]
  for (const page of pages) {
    await page.setViewportSize(DESKTOP)
    await page.goto(`${h.url}/demo/`)
    await waitForStatus(page, 'Signed out.')
  }
  const seen = recordResponses(context)
  await signIn(pages[0]!, username)
  // The other tabs share the session: the token reaches them by BroadcastChannel.
  for (const page of pages.slice(1)) await waitForStatus(page, `Signed in as ${username}.`)
  const sessions = await sessionsSeenFrom(pages[2]!)
  t.equal(sessions.length, 1, 'one session for the three tabs')
  t.equal(sessions[0]?.current, true, 'and it is theirs')
  return { pages, seen, sessionId: sessions[0]!.id }
}

async function assertTabsConverged (t: Test, pages: Page[], seen: Seen[], username: string, sessionId: string): Promise<void> {
  t.same(seen.filter((s) => s.code === 'token_reused'), [], 'no token_reused')
  t.same(seen.filter((s) => s.path === '/auth/refresh' && s.status !== 200), [], 'every refresh succeeded')
  for (const [i, page] of pages.entries()) {
    t.equal(await status(page), `Signed in as ${username}.`, `tab ${i + 1} still signed in`)
    t.same(await failuresShown(page), [], `tab ${i + 1}: no failed call reached the page`)
  }
  const sessions = await sessionsSeenFrom(pages[1]!)
  t.same(sessions.map((s) => [s.id, s.current]), [[sessionId, true]], 'still the one session of the login')
}

t.test('auth client in chromium, through the demo page', async (t) => {
  const h = await build(t, {
    env: { ...RELAXED_LIMITS, ACCESS_TOKEN_TTL: '4', REFRESH_REUSE_GRACE: '10', COOKIE_SECURE: 'false', DEMO_PAGE: 'true' }
  })
  const browser = await launchBrowser(t)

  t.test('the demo page: strict CSP, no CDN', async (t) => {
    const res = await fetch(`${h.url}/demo/`)
    t.equal(res.status, 200)
    const csp = res.headers.get('content-security-policy') ?? ''
    t.match(csp, /default-src 'none'/)
    t.match(csp, /script-src 'self'(;|$)/)
    t.match(csp, /style-src 'self'(;|$)/)
    t.match(csp, /connect-src 'self'(;|$)/)
    t.notMatch(csp, /unsafe-inline|unsafe-eval/)
    const html = await res.text()
    t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script')
    t.notMatch(html, /\sstyle=|<style/, 'no inline style')
    t.notMatch(html, /https?:\/\//, 'nothing from another origin')
    t.match(html, /integrity="sha384-[\w+/=]+"/, 'the client is pinned by its hash')
    t.equal((await fetch(`${h.url}/demo`)).status, 200, '/demo too')
  })

  t.test('one tab: sign in, stay signed in across expiries, reload, sign out', async (t) => {
    const context = await browser.newContext({ viewport: DESKTOP })
    t.teardown(() => context.close())
    const page = await context.newPage()
    const problems: string[] = []
    page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()) })
    page.on('pageerror', (error) => { problems.push(error.message) })
    const seen = recordResponses(context)

    await page.goto(`${h.url}/demo/`)
    await waitForStatus(page, 'Signed out.')
    t.match(seen, [{ path: '/auth/refresh', status: 401 }], 'on start, the client tried the cookie (there was none)')
    seen.length = 0
    await screenshot(page, 'demo-signed-out-1280')
    await page.locator('#login-form input[name=username]').fill('alice')
    await page.locator('#login-form input[name=password]').fill('wrong-password')
    await page.locator('#login-form button[type=submit]').click()
    await page.waitForFunction(() => (globalThis as any).document.getElementById(
      'login-error')?.textContent === 'Wrong username or password.', undefined, { timeout: 60_000 })

    await signIn(page, 'alice')
    await page.locator('#order-form input[name=item]').fill('Espresso beans')
    await page.locator('#order-form input[name=quantity]').fill('3')
    await page.locator('#order-form button[type=submit]').click()
    await page.locator('#orders tbody tr', { hasText: 'Espresso beans' }).waitFor()

    // Several expiries of the 4-second token while the page keeps calling the API.
    await fireUntilRefreshed([page], seen, 3)
    t.equal(await status(page), 'Signed in as alice.', 'still signed in')
    t.same(await failuresShown(page), [], 'no 401 (or other failure) reached the page')
    t.same(seen.filter((s) => s.path === '/auth/refresh' && s.status !== 200), [], 'every refresh succeeded')
    t.match(await page.locator('#token-lifetime').textContent(), /^\d+\.\d s$/, 'the remaining lifetime is shown')
    await screenshot(page, 'demo-signed-in-1280')
    await page.setViewportSize(PHONE)
    await screenshot(page, 'demo-signed-in-phone')
    await page.setViewportSize(DESKTOP)

    // The refresh token is in an HttpOnly cookie only: never visible to the page's JavaScript.
    const cookies = await context.cookies(h.url + '/auth/refresh')
    const refreshCookie = cookies.find((c) => c.name === 'refresh_token')
    t.ok(refreshCookie?.httpOnly, 'the browser holds an HttpOnly refresh_token cookie')
    t.equal(refreshCookie?.sameSite, 'Strict')
    t.notMatch(await page.evaluate(() => (globalThis as any).document.cookie as string), /refresh_token/, 'document.cookie never shows it')
    const storage = await page.evaluate(() => JSON.stringify({ ...(globalThis as any).localStorage })
      + JSON.stringify({ ...(globalThis as any).sessionStorage }))
    t.equal(storage, '{}{}', 'nothing in localStorage or sessionStorage')

    const loginsBefore = seen.filter((s) => s.path === '/auth/login').length
    await page.reload()
    await waitForStatus(page, 'Signed in as alice.')
    await page.locator('#orders tbody tr', { hasText: 'Espresso beans' }).waitFor()
    t.equal(seen.filter((s) => s.path === '/auth/login').length, loginsBefore, 'the reload signed in by refreshing, not by a login')

    await page.locator('#logout').click()
    await waitForStatus(page, 'Signed out.')
    await page.reload()
    await waitForStatus(page, 'Signed out.')
    t.equal(await otherSessions(h, 'alice'), 0, 'the session is gone at the gateway')
    await page.setViewportSize(PHONE)
    await screenshot(page, 'demo-signed-out-phone')
    t.same(problems.filter((p) => !/status of 401/.test(p)), [], 'no script error or CSP violation in the console')
  })

  t.test('three tabs with Web Locks: requests during expiry, one session, logout everywhere', async (t) => {
    const context = await browser.newContext({ viewport: DESKTOP })
    t.teardown(() => context.close())
    const { pages, seen, sessionId } = await threeTabs(t, h, context, 'bob')
    t.ok(await pages[0]!.evaluate(() => typeof (globalThis as any).navigator.locks?.request === 'function'), 'this browser has Web Locks')

    await fireUntilRefreshed(pages, seen, 3)
    await assertTabsConverged(t, pages, seen, 'bob', sessionId)
    await screenshot(pages[2]!, 'demo-tab-3-of-3')

    await pages[1]!.locator('#logout').click()
    for (const page of pages) await waitForStatus(page, 'Signed out.')
    t.equal(await otherSessions(h, 'bob'), 0, 'no session left')
  })

  t.test('three tabs without Web Locks: tabs race and the grace window makes them converge', async (t) => {
    const context = await browser.newContext({ viewport: DESKTOP })
    t.teardown(() => context.close())
    await context.addInitScript(() => { Object.defineProperty((globalThis as any).Navigator.prototype, 'locks', { get: () => undefined }) })
    const { pages, seen, sessionId } = await threeTabs(t, h, context, 'admin')
    t.equal(await pages[0]!.evaluate(() => typeof (globalThis as any).navigator.locks), 'undefined', 'no Web Locks in these tabs')

    await fireUntilRefreshed(pages, seen, 4)
    await assertTabsConverged(t, pages, seen, 'admin', sessionId)

    await pages[2]!.locator('#logout-all').click()
    for (const page of pages) await waitForStatus(page, 'Signed out.')
    t.equal(await otherSessions(h, 'admin'), 0, 'no session left')
  })
})
