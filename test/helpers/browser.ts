/**
 * Headless Debian chromium driven by playwright-core, for the page tests. Installed by
 * `make test-packages` when missing. Screenshots go to test/artifacts/ (git-ignored).
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'

interface Teardown { teardown: (fn: () => unknown) => void }

export const ARTIFACTS_DIR = join(import.meta.dirname, '..', 'artifacts')

/** Flags that keep chromium off the network (this machine has none) and runnable as root. */
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

/** Launches chromium for one test and closes it in teardown. */
export async function launchBrowser (t: Teardown): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  return browser
}

/** Saves a full-page screenshot as test/artifacts/<name>.png so a person can look at the page. */
export async function screenshot (page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true })
  const path = join(ARTIFACTS_DIR, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

/** Fills and sends the dashboard's (/admin/) sign-in form. */
export async function signInToDashboard (page: Page, username = 'admin', password = 'admin-password'): Promise<void> {
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

/**
 * The page's uncaught errors as they happen; with `console`, also its console errors (a CSP
 * violation, say) but "Failed to load resource", which the browser logs for every refused API
 * answer (a 401 refresh without a cookie, a favicon's 404). A test ends by asserting the list is empty.
 */
export function pageErrors (page: Page, opts: { console?: boolean } = {}): string[] {
  const problems: string[] = []
  page.on('pageerror', (e) => problems.push(e.message))
  if (opts.console === true) {
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()) })
  }
  return problems
}
