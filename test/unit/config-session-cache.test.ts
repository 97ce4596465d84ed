/** SESSION_CACHE (on / off, default on) and LIMIT_SYNC_MS (10 to 10000 ms, default 1000): docs/session-cache.md. */
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { unconfirmedAllowance } from '../../src/limits/batched-window-counter.js'

function refused (env: Record<string, string>, variable: string): boolean {
  try { loadConfig(env) } catch (err) { return err instanceof ConfigError && err.variable === variable }
  return false
}

t.test('SESSION_CACHE', async (t) => {
  t.equal(loadConfig({}).sessionCache, true, 'on by default')
  t.equal(loadConfig({ SESSION_CACHE: 'on' }).sessionCache, true)
  t.equal(loadConfig({ SESSION_CACHE: 'off' }).sessionCache, false)
  for (const bad of ['true', 'OFF', '0', 'yes']) t.ok(
    refused({ SESSION_CACHE: bad }, 'SESSION_CACHE'),
    `${bad} is refused naming the variable`
  )
})

t.test('LIMIT_SYNC_MS', async (t) => {
  t.equal(loadConfig({}).limitSyncMs, 1000, 'default 1000')
  t.equal(loadConfig({ LIMIT_SYNC_MS: '50' }).limitSyncMs, 50)
  for (const bad of ['0', '9', '10001', '1.5', 'soon']) t.ok(
    refused({ LIMIT_SYNC_MS: bad }, 'LIMIT_SYNC_MS'),
    `${bad} is refused naming the variable`
  )
})

t.test('the unconfirmed allowance per replica: 1% of the limit, none under 100', async (t) => {
  t.same([1, 4, 99, 100, 600, 100_000].map(unconfirmedAllowance), [0, 0, 0, 1, 6, 1000])
})
