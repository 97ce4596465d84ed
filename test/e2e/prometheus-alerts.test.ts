/**
 * The shipped alert rules (deploy/observability/gateway-alerts.rules.yaml) in a real Prometheus
 * (Debian package prometheus, scripts/test-packages.txt) scraping a real gateway: every metric the
 * rules and the Grafana dashboard use exists in the gateway's /metrics, and when Redis stops,
 * GatewayRedisDown goes pending, then firing, and resolves once Redis is back; /readyz stays 200
 * all along. The rule file is loaded as shipped; only the scrape and evaluation intervals are short
 * (the group has no interval of its own, so the global evaluation_interval applies).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { build } from '../helper.js'
import { freePort, waitFor } from '../helpers/redis-server.js'
import { ROOT } from '../helpers/processes.js'
import { killAndWait, spawnTracked } from '../../dev-tools/child-processes.js'

const RULES = join(ROOT, 'deploy/observability/gateway-alerts.rules.yaml')
const DASHBOARD = join(ROOT, 'deploy/observability/grafana-dashboard.json')

interface Alert { labels: Record<string, string>, state: 'pending' | 'firing' }
interface RuleGroup { name: string, rules: Array<{ name: string, health: string }> }

/** The metric names an expression uses (the gateway's all start with gateway_). */
function metricNames (expr: string): string[] {
  return expr.match(/\bgateway_[a-z0-9_]+/g) ?? []
}

t.test('Prometheus scrapes the gateway and GatewayRedisDown goes pending, firing, resolved', async (t) => {
  const version = spawnSync('prometheus', ['--version'], { encoding: 'utf8' })
  if (version.error !== undefined || version.status !== 0) {
    t.fail('prometheus is not installed (apt-get install prometheus; make test-packages installs it)')
    return
  }

  // The orders upstream is down: its 502s give the upstream-error counter a sample.
  const h = await build(t, { env: { ORDERS_URL: `http://127.0.0.1:${await freePort()}` } })
  const alice = await h.login('alice')
  t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 502, 'a 502 upstream_unavailable (counted)')
  t.equal((await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'wrong' } })).status, 401,
    'a failed login (a security event)')
  const dir = await mkdtemp(join(tmpdir(), 'gw-prometheus-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    rule_files: [RULES],
    scrape_configs: [{ job_name: 'gateway', static_configs: [{ targets: [new URL(h.url).host] }] }]
  }
  await writeFile(join(dir, 'prometheus.yml'), JSON.stringify(config))
  const prometheus = spawnTracked('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn'
  ], { stdio: ['ignore', 'ignore', 'pipe'] }, false)
  let log = ''
  prometheus.stderr?.on('data', (chunk: Buffer) => { log = (log + chunk.toString()).slice(-4000) })
  t.teardown(() => killAndWait(prometheus))

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/${path}`, { signal: AbortSignal.timeout(3000) })
    const body = await res.json() as { status: string, data: T }
    if (body.status !== 'success') throw new Error(`${path}: ${JSON.stringify(body)}`)
    return body.data
  }
  const attempt = async <T>(f: () => Promise<T>): Promise<T | undefined> => { try { return await f() } catch { return undefined } }
  const redisDown = async (): Promise<Alert | undefined> =>
    (await api<{ alerts: Alert[] }>('alerts')).alerts.find((a) => a.labels.alertname === 'GatewayRedisDown')

  await waitFor(async () => {
    const targets = await attempt(() => api<{ activeTargets: Array<{ health: string }> }>('targets'))
    return targets?.activeTargets[0]?.health === 'up'
  }, `Prometheus scraping the gateway (${log})`, 30_000)

  const ruleGroups = async (): Promise<RuleGroup[]> => (await api<{ groups: RuleGroup[] }>('rules')).groups
  const shipped = parse(await readFile(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string, expr: string }> }> }
  const shippedAlerts = shipped.groups.flatMap((g) => g.rules.map((r) => r.alert))
  t.same((await ruleGroups()).flatMap((g) => g.rules.map((r) => r.name)).sort(), [...shippedAlerts].sort(),
    'Prometheus loaded every shipped alert')
  // Health turns ok at the first evaluation; an expression Prometheus cannot evaluate stays "err".
  await waitFor(async () => (await ruleGroups()).every((g) => g.rules.every((r) => r.health === 'ok')),
    'every rule evaluated without error')

  // Every metric the alerts and the dashboard query is one the gateway exports.
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> }
  const used = new Set([
    ...shipped.groups.flatMap((g) => g.rules.flatMap((r) => metricNames(r.expr))),
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((q) => metricNames(q.expr)))
  ])
  t.ok(used.size >= 10, `the rules and the dashboard use ${used.size} gateway metrics`)
  let missing: string[] = []
  await waitFor(async () => {
    const names = new Set(await api<string[]>('label/__name__/values'))
    missing = [...used].filter((n) => !names.has(n))
    return missing.length === 0
  }, 'every metric of the rules and the dashboard in Prometheus').catch(() => {})
  t.same(missing, [], 'each of them is scraped from the gateway')

  t.equal(await redisDown(), undefined, 'no GatewayRedisDown while Redis answers')

  await h.redis.kill()
  await waitFor(async () => (await redisDown())?.state === 'pending', 'GatewayRedisDown pending', 30_000)
  t.pass('GatewayRedisDown pending once the gateway reports gateway_redis_up 0')
  t.equal((await h.request('GET', '/readyz')).status, 200, '/readyz stays 200 while Redis is away')
  await waitFor(async () => (await redisDown())?.state === 'firing', 'GatewayRedisDown firing', 60_000)
  const firing = await redisDown()
  t.match(firing, { state: 'firing', labels: { severity: 'critical', job: 'gateway', instance: new URL(h.url).host } },
    'GatewayRedisDown fires for the gateway\'s instance')

  await h.redis.restart()
  await waitFor(async () => (await redisDown()) === undefined, 'GatewayRedisDown resolved', 30_000)
  t.pass('GatewayRedisDown resolves once Redis is back')
  const up = await api<{ result: Array<{ value: [number, string] }> }>('query?query=gateway_redis_up')
  t.equal(up.result[0]?.value[1], '1', 'gateway_redis_up is 1 again')
})
