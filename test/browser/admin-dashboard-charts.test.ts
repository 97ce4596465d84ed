/**
 * The dashboard's drawings and the trail export in a real browser (Debian chromium driven by
 * playwright-core): events per minute over the last hour and per hour over the last day as an SVG
 * chart (failed logins, refresh reuse, blocks, successful logins), a user found by name with their
 * state and sessions, and the filtered trail downloaded as NDJSON. Everything under the page's
 * strict CSP (a violation would show as a console error). Screenshots at 1280x800 and at a phone's
 * 390x844 go to test/artifacts/.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { build } from '../helper.js'
import { launchBrowser, screenshot, signInToDashboard, pageErrors } from '../helpers/browser.js'
import { AuditLog } from '../../src/audit/audit-log.js'

execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'build-web.mjs')], { stdio: 'inherit' })

const WAIT = { timeout: 15_000 }

async function signIn (page: Page, url: string): Promise<void> {
  await page.goto(`${url}/admin/`)
  await signInToDashboard(page)
}

/** The y coordinates of a chart line, one per bucket. */
async function lineYs (page: Page, series: string): Promise<number[]> {
  const points = await page.locator(`#chart polyline.series.${series}`).getAttribute('points')
  return (points ?? '').split(' ').map((p) => Number(p.split(',')[1]))
}

t.test('the chart, the search by name and the NDJSON export', async (t) => {
  const h = await build(t, { env: { COOKIE_SECURE: 'false' } })
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  // A shaped hour and day: events placed at known minutes and hours (the counters take the time given).
  const log = new AuditLog(redis, 7)
  const now = Date.now()
  const at = async (event: string, n: number, msAgo: number): Promise<void> => {
    for (let i = 0; i < n; i++) await log.append(event, { ip: '203.0.113.5', request_id: `seed-${event}-${msAgo}-${i}` }, now - msAgo)
  }
  for (const [minutesAgo, n] of [[50, 2], [40, 6], [30, 12], [29, 9], [20, 3], [5, 1]] as const) await at('login_failed', n,
    minutesAgo * 60_000)
  for (const [minutesAgo, n] of [[45, 3], [35, 5], [25, 4], [15, 6], [10, 2], [3, 4]] as const) await at('login_succeeded', n,
    minutesAgo * 60_000)
  await at('token_reuse_detected', 2, 12 * 60_000)
  await at('account_locked', 1, 30 * 60_000)
  await at('ip_blocked', 1, 29 * 60_000)
  for (const [hoursAgo, n] of [[20, 40], [14, 25], [9, 60], [6, 10], [3, 30]] as const) await at('login_failed', n, hoursAgo * 3_600_000)
  await at('ip_blocked', 3, 9 * 3_600_000)
  await at('token_reuse_detected', 5, 14 * 3_600_000)
  await h.login('bob')
  await h.login('bob')

  const browser = await launchBrowser(t)
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true })
  const page = await context.newPage()
  const problems = pageErrors(page, { console: true })
  const signedInAt = Date.now()
  await signIn(page, h.url)

  // The last hour: one line per series, its totals in the legend.
  await page.locator('#chart svg polyline.series').first().waitFor(WAIT)
  t.equal(await page.locator('#chart polyline.series').count(), 4, 'four lines')
  const legend = await page.locator('#chart-legend').innerText()
  t.match(legend, /Failed logins\s*33/, 'failed logins in the hour: 33')
  t.match(legend, /Refresh reuse\s*2/)
  t.match(legend, /Blocks\s*2/, 'account lockouts and IP blocks together')
  t.match(legend, /Successful logins\s*(2[6-9]|3\d)/, '24 seeded plus the logins of this test')
  const failed = await lineYs(page, 'failed')
  const drawnBy = Date.now()
  t.equal(failed.length, 60, 'sixty minutes')
  // The chart's last bucket is the minute it was drawn in; seeding and signing in can cross a
  // minute boundary, so the bucket of "thirty minutes ago" is counted from that minute.
  const minute = (ms: number): number => Math.floor(ms / 60_000)
  const seeded = minute(now - 30 * 60_000)
  const expected = new Set([minute(signedInAt), minute(drawnBy)].map((m) => 59 - (m - seeded)))
  t.ok(expected.has(failed.indexOf(Math.min(...failed))), 'the highest point of the failed logins is thirty minutes ago')
  t.match(await page.locator('#chart-note').innerText(), /per minute, the last 60 minutes/)
  await screenshot(page, 'admin-dashboard-chart-1280x800')

  // The last day, per hour.
  await page.getByRole('button', { name: 'Last day' }).click()
  await page.locator('#chart-note', { hasText: 'the last 24 hours' }).waitFor(WAIT)
  t.equal(await page.getByRole('button', { name: 'Last day' }).getAttribute('aria-pressed'), 'true')
  const dayLegend = await page.locator('#chart-legend').innerText()
  t.match(dayLegend, /Failed logins\s*198/, '165 over the day plus the 33 of the hour')
  t.match(dayLegend, /Blocks\s*5/)
  t.equal((await lineYs(page, 'failed')).length, 24, 'twenty-four hours')
  await screenshot(page, 'admin-dashboard-chart-day-1280x800')

  // A user found by name: state and sessions on one page.
  await page.getByLabel('Name or id').fill('Bob')
  await page.getByRole('button', { name: 'Search' }).click()
  const head = page.locator('#user-result .user-head', { hasText: 'bob' })
  await head.waitFor(WAIT)
  t.match(await head.innerText(), /id 1002 · .*active · 2 sessions/, 'id, roles, state and the session count')
  t.equal(await page.locator('#user-result li[data-session]').count(), 2, 'both sessions listed with a revoke button each')
  await page.getByLabel('Name or id').fill('nobody-at-all')
  await page.getByRole('button', { name: 'Search' }).click()
  await page.getByText('No user named nobody-at-all').waitFor(WAIT)
  await page.getByLabel('Name or id').fill('bob')
  await page.getByRole('button', { name: 'Search' }).click()
  await head.waitFor(WAIT)

  // The filtered trail, shown and exported.
  await page.getByLabel('Event', { exact: true }).fill('token_reuse_detected')
  await page.getByRole('button', { name: 'Filter' }).click()
  await page.locator('#trail-status', { hasText: 'matching events' }).waitFor(WAIT)
  t.equal(await page.locator('#trail li[data-event="token_reuse_detected"]').count(), 7, 'the seven reuse events')
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export NDJSON' }).click()])
  t.match(download.suggestedFilename(), /^audit-.*\.ndjson$/)
  const file = await readFile(await download.path())
  const lines = file.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string })
  t.equal(lines.length, 7, 'the export holds the filtered events')
  t.ok(lines.every((e) => e.event === 'token_reuse_detected'), 'and only them')
  await page.locator('#trail-status', { hasText: 'Exported 7 events' }).waitFor(WAIT)

  await page.getByRole('button', { name: 'Last hour' }).click()
  await page.locator('#chart-note', { hasText: 'the last 60 minutes' }).waitFor(WAIT)
  await screenshot(page, 'admin-dashboard-full-1280x800')
  await page.setViewportSize({ width: 390, height: 844 })
  await screenshot(page, 'admin-dashboard-full-390x844')
  t.same(problems, [], 'no script errors and no CSP violations in the page')
})
