/**
 * The demo page's live feed in a real browser (Debian chromium, playwright-core): Chromium's own
 * WebSocket through the gateway, opened by the client's `websocket()` with a ticket; the feed
 * stops (close 1008 `session_revoked`, by the gateway) when the user logs out in another tab.
 */
import t from 'tap'
import { build } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { launchBrowser, screenshot } from '../helpers/browser.js'
import { buildClient } from '../../scripts/build-client.mjs'

await buildClient()
const WAIT = { timeout: 30_000 }

t.test('the live feed stops when the user logs out in another tab', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, COOKIE_SECURE: 'false', DEMO_PAGE: 'true' } })
  const browser = await launchBrowser(t)
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } })
  t.teardown(() => context.close())
  const sockets: string[] = []
  const problems: string[] = []
  context.on('page', (page) => {
    page.on('websocket', (ws) => sockets.push(ws.url()))
    page.on('pageerror', (e) => problems.push(e.message))
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()) })
  })
  const feedTab = await context.newPage()
  await feedTab.goto(`${h.url}/demo/`)
  await feedTab.locator('#login-form input[name=username]').fill('alice')
  await feedTab.locator('#login-form input[name=password]').fill('alice-password')
  await feedTab.locator('#login-form button[type=submit]').click()
  await feedTab.locator('#feed-status', { hasText: 'open' }).waitFor(WAIT)
  await feedTab.locator('#feed li', { hasText: '"hello":"alice"' }).waitFor(WAIT)
  await feedTab.locator('#feed li', { hasText: '"tick":2' }).waitFor(WAIT)
  t.pass('the feed greets alice and echoes the ticks')
  t.ok(sockets.length > 0 && sockets.every((u) => /\/api\/orders\/ws\?ticket=[A-Za-z0-9_-]{43}$/.test(u)), 'Chromium opened the socket with a ticket')
  await screenshot(feedTab, 'demo-live-feed-open')

  const otherTab = await context.newPage()
  await otherTab.goto(`${h.url}/demo/`)
  await otherTab.locator('#logout').waitFor({ state: 'visible', ...WAIT })
  await otherTab.locator('#logout').click()
  await feedTab.locator('#feed-status', { hasText: 'closed (1008 session_revoked)' }).waitFor(WAIT)
  t.pass('the feed stopped: the gateway closed the socket')
  await screenshot(feedTab, 'demo-live-feed-closed')
  t.same(problems, [], 'no script error or CSP violation')
})
