/**
 * deploy/observability/gateway-alerts.rules.yaml as Prometheus reads it: `promtool check rules`
 * accepts it and `promtool test rules` passes its unit tests; the same tests fail against a copy
 * whose Redis and 5xx alerts are broken, so they do test the thresholds.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../helpers/processes.js'

const DIR = join(ROOT, 'deploy/observability')

function promtool (args: string[], cwd: string): { status: number | null, output: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' })
  if (r.error !== undefined) return { status: null, output: `promtool: ${r.error.message} (apt-get install prometheus)` }
  return { status: r.status, output: r.stdout + r.stderr }
}

t.test('promtool check rules and test rules pass on the shipped files', async (t) => {
  const check = promtool(['check', 'rules', 'gateway-alerts.rules.yaml'], DIR)
  t.equal(check.status, 0, `promtool check rules: ${check.output}`)
  t.match(check.output, /SUCCESS: \d+ rules found/)
  const test = promtool(['test', 'rules', 'gateway-alerts.test.yaml'], DIR)
  t.equal(test.status, 0, `promtool test rules: ${test.output}`)
  t.match(test.output, /SUCCESS/)
})

t.test('the unit tests fail when an alert is broken', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-rules-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await copyFile(join(DIR, 'gateway-alerts.test.yaml'), join(dir, 'gateway-alerts.test.yaml'))
  const rules = await readFile(join(DIR, 'gateway-alerts.rules.yaml'), 'utf8')
  const broken = rules.replace('gateway_redis_up == 0', 'gateway_redis_up == 2').replace('> 0.05', '> 0.5')
  t.not(broken, rules, 'the copy is changed')
  await writeFile(join(dir, 'gateway-alerts.rules.yaml'), broken)
  const test = promtool(['test', 'rules', 'gateway-alerts.test.yaml'], dir)
  t.not(test.status, 0, 'promtool test rules fails')
  t.match(test.output, /GatewayRedisDown/, 'on the Redis alert')
  t.match(test.output, /GatewayHigh5xxRate/, 'and on the 5xx alert')
})
