/**
 * The browser client (client/, served with the demo page) working unchanged through the shipped
 * nginx configuration (deploy/edge/nginx/auth-gateway.conf) with the gateway as nginx's auth
 * service: sign in, create an order, stay signed in across expiries, and recover from a 401
 * `token_expired` that comes through nginx's mapping of the gateway's refusal.
 */
import t from 'tap'
import type { Response } from 'playwright-core'
import { build } from '../helper.js'
import { RELAXED_LIMITS, waitUntilPast } from '../helpers/auth.js'
import { launchBrowser } from '../helpers/browser.js'
import { startNginx } from '../helpers/edge-proxies.js'
import { waitFor } from '../helpers/redis-server.js'
import { buildClient } from '../../scripts/build-client.mjs'

await buildClient()
t.setTimeout(480_000)

interface Seen { path: string, status: number, code?: string }

t.test('the browser client through nginx', async (t) => {
  const h = await build(t, {
    env: { ...RELAXED_LIMITS, ACCESS_TOKEN_TTL: '4', REFRESH_REUSE_GRACE: '10', COOKIE_SECURE: 'false', DEMO_PAGE: 'true',
      FORWARD_AUTH_PROXIES: '127.0.0.1=nginx', TRUST_PROXY: '127.0.0.1' }
  })
  const nginx = await startNginx(t, { gateway: h.url, users: h.config.upstreams.users, orders: h.config.upstreams.orders })
  const browser = await launchBrowser(t)
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  t.teardown(() => context.close())
  const seen: Seen[] = []
  context.on('response', (response: Response) => {
    const url = new URL(response.url())
    if (!url.pathname.startsWith('/auth/') && !url.pathname.startsWith('/api/')) return
    const entry: Seen = { path: url.pathname, status: response.status() }
    seen.push(entry)
    if (response.status() >= 400) response.json().then((body: { code?: string }) => { entry.code = body.code }, () => {})
  })
  const page = await context.newPage()
  // The page's clock is ours: frozen later, so the client cannot see its token expire coming.
  await page.clock.install()
  const statusIs = async (text: string): Promise<void> => {
    await page.waitForFunction((expected) => (globalThis as any).document.getElementById('status')?.textContent === expected, text,
      { timeout: 60_000 })
  }

  await page.goto(`${nginx.url}/demo/`)
  await statusIs('Signed out.')
  await page.locator('#login-form input[name=username]').fill('alice')
  await page.locator('#login-form input[name=password]').fill('alice-password')
  await page.locator('#login-form button[type=submit]').click()
  await statusIs('Signed in as alice.')
  const signedInAt = Date.now()
  // The client's clock stops right away (its proactive refresh must not run: the calls of a DPoP
  // client take longer than a bearer client's); the gateway's goes on until the token has expired.
  await page.clock.pauseAt(await page.evaluate(() => Date.now() + 100))
  await page.locator('#order-form input[name=item]').fill('Tea through nginx')
  await page.locator('#order-form input[name=quantity]').fill('2')
  await page.locator('#order-form button[type=submit]').click()
  await page.locator('#orders tbody tr', { hasText: 'Tea through nginx' }).waitFor()
  t.ok(seen.some((s) => s.path === '/api/orders' && s.status === 201), 'the order was created through nginx')

  await waitUntilPast(signedInAt + 5_500, 'the 4-second access token has expired')
  const before = seen.length
  await page.locator('#reload-orders').click()
  await waitFor(() => seen.slice(before).some((s) => s.path === '/api/orders' && s.status === 200),
    'the orders reloaded after the expiry').catch(
      (err: Error) => { throw new Error(`${err.message}: ${JSON.stringify(seen.slice(before))}`) })
  const after = seen.slice(before)
  t.match(after, [{ path: '/api/orders', status: 401, code: 'token_expired' }, { path: '/auth/refresh', status: 200 },
    { path: '/api/orders', status: 200 }],
    '401 token_expired through nginx, one refresh, one retry')
  t.equal((await page.locator('#status').textContent()), 'Signed in as alice.')
  t.same(await page.locator('#activity li[data-ok="false"]').allTextContents(), [], 'no failed call reached the page')
})
