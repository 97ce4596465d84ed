/**
 * The demo page's DPoP in a real browser (Debian chromium, playwright-core): the client's key is a
 * non-extractable P-256 key in IndexedDB, shared by the origin's tabs and kept across a reload; the
 * page shows the token bound to it; calls go on past the access token's expiry.
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import { build } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { launchBrowser, screenshot } from '../helpers/browser.js'
import { waitUntilPast } from '../helpers/auth.js'
import { buildClient } from '../../scripts/build-client.mjs'

await buildClient()
t.setTimeout(240_000)

const WAIT = { timeout: 30_000 }

async function signedIn (page: Page, username: string): Promise<void> {
  await page.waitForFunction(
    (expected) => (globalThis as any).document.getElementById('status')?.textContent === expected,
    `Signed in as ${username}.`,
    WAIT
  )
}

async function boundKey (page: Page): Promise<string> {
  await page.waitForFunction(
    () => ((globalThis as any).document.getElementById('token-binding')?.dataset.jkt ?? '') !== '',
    undefined,
    WAIT
  )
  return await page.locator('#token-binding').getAttribute('data-jkt') ?? ''
}

/** What the origin's IndexedDB holds: whether the private key says it is extractable, and whether exporting it fails. */
async function storedKey (page: Page): Promise<{ found: boolean, extractable: boolean, exportFails: boolean }> {
  return await page.evaluate(async () => {
    const g = globalThis as any
    const db: any = await new Promise((resolve, reject) => {
      const r = g.indexedDB.open('auth-client-dpop', 1); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error)
    })
    const names: string[] = await new Promise((resolve) => {
      const r = db.transaction('keys', 'readonly').objectStore('keys').getAllKeys(); r.onsuccess = () => resolve(r.result)
    })
    const pair: any = await new Promise((resolve) => {
      const r = db.transaction('keys', 'readonly').objectStore('keys').get(names[0]); r.onsuccess = () => resolve(r.result)
    })
    db.close()
    if (pair === undefined) return { found: false, extractable: true, exportFails: false }
    const exportFails = await g.crypto.subtle.exportKey('jwk', pair.privateKey).then(() => false, () => true)
    return { found: true, extractable: pair.privateKey.extractable, exportFails }
  })
}

t.test('the demo page with DPoP: one key per origin, not extractable, bound tokens', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, ACCESS_TOKEN_TTL: '4', DEMO_PAGE: 'true' } })
  const browser = await launchBrowser(t)
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const refused: string[] = []
  context.on('response', (response) => {
    const path = new URL(response.url()).pathname
    if ((path.startsWith('/api/') || path.startsWith('/auth/')) && response.status() >= 400
      && path !== '/auth/refresh') refused.push(`${response.status()} ${path}`)
  })
  const first = await context.newPage()
  await first.goto(`${h.url}/demo/`)
  await first.locator('#login-form input[name=username]').fill('alice')
  await first.locator('#login-form input[name=password]').fill('alice-password')
  await first.locator('#login-form button[type=submit]').click()
  await signedIn(first, 'alice')
  const jkt = await boundKey(first)
  t.match(jkt, /^[\w-]{43}$/, 'the page shows the token bound to a key')
  t.equal(await first.locator('#token-binding').getAttribute('data-extractable'), 'false', 'and that the key is not extractable')
  t.match(await first.locator('#token-binding').textContent(), /^DPoP, key .*not extractable/)

  const stored = await storedKey(first)
  t.ok(stored.found, 'the key pair is in IndexedDB')
  t.equal(stored.extractable, false, 'its private key says extractable: false')
  t.ok(stored.exportFails, 'and exporting it fails')

  const second = await context.newPage()
  await second.goto(`${h.url}/demo/`)
  await signedIn(second, 'alice')
  t.equal(await boundKey(second), jkt, 'a second tab uses the same key')

  await first.reload()
  await signedIn(first, 'alice')
  t.equal(await boundKey(first), jkt, 'a reload keeps the key (and the session)')

  // Past the 4-second access token: both tabs go on calling, refreshed with proofs of the same key.
  await waitUntilPast(Date.now() + 5000, 'the access token to expire')
  for (const page of [first, second]) {
    await page.locator('#reload-orders').click()
    await page.waitForFunction(() => (globalThis as any).document.querySelector('#activity li')?.dataset.status === '200', undefined, WAIT)
  }
  t.equal(await boundKey(second), jkt, 'the refreshed token is bound to the same key')
  t.same(refused, [], 'no call of either tab was refused')
  await screenshot(first, 'demo-dpop')
})
