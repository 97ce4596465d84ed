/**
 * The dashboard's client registry in a real browser (Debian chromium, playwright-core): the scopes
 * offered are the metadata document's (the OAuth endpoints' `tokens:introspect` and
 * `token-exchange` among them), a registered client shows its scopes and its secret once, and that
 * secret works at the introspection endpoint; revoking it from the list refuses it.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { build } from '../helper.js'
import { launchBrowser, screenshot, signInToDashboard, pageErrors } from '../helpers/browser.js'
import { introspect } from '../helpers/oauth-standard.js'

execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'build-web.mjs')], { stdio: 'inherit' })

const WAIT = { timeout: 15_000 }

t.test('an admin registers a client with the OAuth scopes from the dashboard', async (t) => {
  const h = await build(t, { env: { COOKIE_SECURE: 'false' } })
  const browser = await launchBrowser(t)
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage()
  const problems = pageErrors(page, { console: true })

  await page.goto(`${h.url}/admin/`)
  await signInToDashboard(page)
  await page.locator('#clients-title').waitFor(WAIT)
  await page.locator('#client-scopes input[value="token-exchange"]').waitFor(WAIT)
  const offered = await Promise.all((await page.locator('#client-scopes input').all()).map(async (box) => await box.getAttribute('value')))
  t.same(offered, ['orders:read', 'orders:write', 'tokens:introspect', 'token-exchange'], 'the scopes offered are the metadata document\'s')

  await page.getByLabel('Client name').fill('edge proxy')
  await page.locator('#client-scopes input[value="tokens:introspect"]').check()
  await page.locator('#client-scopes input[value="token-exchange"]').check()
  await page.getByRole('button', { name: 'Register client' }).click()
  const secretLine = page.locator('#client-secret')
  await secretLine.waitFor({ state: 'visible', ...WAIT })
  const [, clientId, secret] = /Client (\S+) registered\. Its secret, shown this once: (\S+)/.exec(await secretLine.innerText()) ?? []
  t.ok(clientId !== undefined && secret !== undefined, 'the secret is shown once')
  const row = page.locator(`#clients li[data-client="${clientId!}"]`)
  await row.waitFor(WAIT)
  t.same(await row.locator('.chip').allInnerTexts(), ['tokens:introspect', 'token-exchange'], 'the list shows the client\'s scopes')
  await screenshot(page, 'admin-clients-1280x1000')

  const client = { client_id: clientId!, client_secret: secret!, name: 'edge proxy', scopes: [], created_at: '' }
  const alice = await h.login('alice')
  const res = await introspect(h.url, client, alice.access)
  t.match(res, { status: 200, body: { active: true, username: 'alice' } }, 'the registered client introspects')

  // A DPoP-bound client: the checkbox, the chip in the list, and the registry says so.
  await page.getByLabel('Client name').fill('bound worker')
  await page.locator('#client-scopes input[value="orders:read"]').check()
  await page.locator('#client-dpop').check()
  await page.getByRole('button', { name: 'Register client' }).click()
  const boundRow = page.locator('#clients li', { hasText: 'bound worker' })
  await boundRow.waitFor(WAIT)
  t.same(await boundRow.locator('.chip').allInnerTexts(), ['orders:read', 'DPoP-bound'], 'the list marks the DPoP-bound client')
  const admin = await h.login('admin')
  const listed = await h.request('GET', '/admin/clients', { token: admin.access })
  t.same(
    (listed.body.clients as Array<{ name: string, dpop_bound: boolean }>).map((c) => [c.name, c.dpop_bound]),
    [['edge proxy', false], ['bound worker', true]],
    'registered with dpop_bound'
  )

  await row.getByRole('button', { name: 'Revoke' }).click()
  await row.waitFor({ state: 'detached', ...WAIT })
  t.equal((await introspect(h.url, client, alice.access)).status, 401, 'revoked from the list: its authentication fails')
  t.same(problems, [], 'no console errors (CSP included)')
})
