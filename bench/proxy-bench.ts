/**
 * `make bench`: the proxy benchmark. One run measures, interleaved, eleven targets behind the same
 * upstream, each in its own process (autocannon runs here, alone on its event loop):
 *
 *   upstream         the upstream directly (node:http, GET /api/orders → small JSON)
 *   bare proxy       @fastify/http-proxy in front of it and nothing else
 *   floor (bare)     the bare proxy + the gateway's session check (SessionStore.isAliveCounted, one EVALSHA)
 *   floor (lean)     an undici dispatch proxy (bench/lean-proxy.ts) + the same check
 *   gateway cached   the gateway (buildGateway) with a valid token, verified-token cache and session cache on (defaults)
 *   SESSION_CACHE=off the same gateway with the per-request session check in Redis
 *   DPoP-bound       the cached gateway with a DPoP-bound token and a new proof per request
 *   nginx + check    nginx (deploy/edge/nginx/auth-gateway.conf) asking a gateway's /auth/check, then
 *                    forwarding to the upstream itself; CPU per request is that gateway's
 *   gateway uncached the same with TOKEN_CACHE_SIZE=0 (an ES256 verification per request)
 *   orders stub      the real orders stub alone, called with a valid gateway assertion
 *   full chain       the gateway (cached) in front of the real orders stub, as `make run` runs them
 *
 * After the rounds: latency with microsecond resolution at 1 and 8 connections (wrk, or the undici
 * client of bench/latency-client.ts without it) for the bare proxy and the gateway with the session
 * cache on and off, interleaved over the rounds; the latency the gateway adds at half of its peak
 * rate (gateway vs upstream at the same fixed rate); logins/s and refreshes/s through the full
 * chain (argon2id-bound). Each round runs every target once (warm-up, then the measured run); the
 * report shows the median round of each target, the ratios gateway/bare proxy, the Redis commands
 * per proxied request (INFO commandstats before and after each gateway run, and a MONITOR audit of
 * round trips), and each server process's CPU, GC pause and allocation per request.
 *
 * Environment: BENCH_DURATION (s, 5), BENCH_WARMUP (s, 2), BENCH_CONNECTIONS (50), BENCH_ROUNDS (3),
 * BENCH_LATENCY_ROUNDS (5), BENCH_WRITE=1 (write BENCHMARKS.md), BENCH_CPU_PROF=<dir> (--cpu-prof of every server process).
 * Any connection error or non-2xx answer makes the run invalid: it exits 1.
 */
import type { ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem, release, availableParallelism, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import autocannon, { type Result } from 'autocannon'
import { Redis } from 'ioredis'
import { generatePrivateJwk } from '../src/tokens/key-ring.js'
import type { ParentMessage, ServerSpec } from './bench-servers.js'
import { cpuReading as readCpu, nextMessage, perRequestOf, startServer as startChild, stopServer, type CpuReading, type ServerRole }
  from './bench-children.js'
import { fmt, lowerMedian as medianOf } from './bench-figures.js'
import { startRedis } from '../dev-tools/redis-server.js'
import { envInt } from '../dev-tools/env-int.js'
import { startBenchNginx } from './edge-nginx.js'
import { dpopProver } from './dpop-prover.js'
import { hasWrk, undiciRun, wrkRun, type LatencyResult } from './latency-client.js'
import { gatewayNodeFlags } from './gateway-node-flags.js'

const ORDERS_PATH = '/api/orders'

const DURATION = envInt('BENCH_DURATION', 5, 1)
const WARMUP = envInt('BENCH_WARMUP', 2, 0)
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 50, 1)
const ROUNDS = envInt('BENCH_ROUNDS', 3, 1)
/** Rounds of the latency runs: a p99 at 8 connections on a shared machine moves a lot from run to run. */
const LATENCY_ROUNDS = envInt('BENCH_LATENCY_ROUNDS', 5, 1)
const WRITE = process.env.BENCH_WRITE === '1'
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF
const AUDIT_REQUESTS = 100
const TARGET_RATIO = 0.8
/** The performance issue's other goals: Redis round trips per proxied request, p99 against the bare proxy, allocation. */
const TARGET_ROUND_TRIPS = 0.05
const TARGET_P99_FACTOR = 1.5
const TARGET_EXTRA_KB = 10
/** Connections of the latency runs (wrk -t1 -cN), and the targets they compare. */
const LATENCY_CONNECTIONS = [1, 8] as const
const LATENCY_TARGETS = ['bare', 'cached', 'sessionOff'] as const

type TargetId = 'upstream' | 'bare' | 'bareCheck' | 'leanCheck' | 'cached' | 'sessionOff' | 'dpop' | 'nginxCheck' | 'uncached' | 'stub'
  | 'chain'
interface Target {
  id: TargetId
  label: string
  url: string
  headers: Record<string, string>
  /** Talks to the bench's Redis: its commands and redis-server's CPU are counted, its round trips audited. */
  redis: boolean
  child: ChildProcess
  /** Fresh headers before each run (assertions live 60 s). */
  renewHeaders?: () => Promise<Record<string, string>>
  /** Headers made anew for every request (a DPoP proof is good once). */
  perRequest?: () => Record<string, string>
}

interface Run {
  rps: number
  p50: number
  p99: number
  completed: number
  /** CPU time (user + system) of the target's process per completed request, in microseconds. */
  cpuPerRequest: number
  /** Redis commands during the run (gateways only): every command, including those inside Lua scripts. */
  redisCommands?: Record<string, number>
  /** CPU time of redis-server per completed request (gateways only), in microseconds. */
  redisCpuPerRequest?: number
  /** GC pause time per 1,000 requests (ms) and bytes allocated per request (KB), the target's process (v8.GCProfiler). */
  gcMsPer1000?: number
  allocKbPerRequest?: number
}

// ---------------------------------------------------------------------------------------------
// Child processes

async function startServer (name: string, role: ServerRole, spec: ServerSpec = {}): Promise<{ child: ChildProcess, url: string }> {
  const execArgv = CPU_PROF_DIR !== undefined
    ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF_DIR, '--cpu-prof-name', `${name.replace(/\W+/g, '-')}.cpuprofile`]
    : []
  return await startChild(name, role, spec, execArgv)
}

// ---------------------------------------------------------------------------------------------
// Load and measurements

function invalid (message: string): never {
  console.error(`\nINVALID RUN: ${message}`)
  // process.exit kills the server processes (bench/bench-children.ts).
  process.exit(1)
}

async function load (target: Target, duration: number, overallRate?: number, connections = CONNECTIONS): Promise<Result> {
  const result = await autocannon({
    url: target.url + ORDERS_PATH, connections, duration, headers: target.headers, timeout: 10,
    ...(target.perRequest !== undefined ? { requests: [{ setupRequest: (req: Record<string, unknown>) => ({
      ...req,
      headers: { ...req.headers as Record<string, string>, ...target.perRequest!() }
    }) }] } : {}),
    ...(overallRate !== undefined ? { overallRate } : {})
  })
  const bad = result.errors + result.timeouts + result.non2xx
  if (bad > 0 || result['2xx'] === 0) {
    invalid(`${target.label}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx ` +
      `(status codes ${JSON.stringify(result.statusCodeStats)}), ${result['2xx']} 2xx`)
  }
  return result
}

/** Calls per command from INFO commandstats, without INFO itself (the benchmark's own probe). */
async function commandStats (redis: Redis): Promise<Record<string, number>> {
  const text = await redis.info('commandstats')
  const calls: Record<string, number> = {}
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (match[1] === 'info') continue
    calls[match[1]!] = Number(match[2])
  }
  return calls
}

/** redis-server's own CPU time (user + system, main thread and children), in microseconds. */
async function redisCpuMicros (redis: Redis): Promise<number> {
  const text = await redis.info('cpu')
  let total = 0
  for (const match of text.matchAll(/^used_cpu_(?:sys|user)(?:_children)?:([\d.]+)/gm)) total += Number(match[1])
  return total * 1e6
}

function diff (after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, n] of Object.entries(after)) {
    const d = n - (before[name] ?? 0)
    if (d > 0) out[name] = d
  }
  return out
}

const sum = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0)
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A measured run: throughput, latency, and the gateway's CPU, GC and allocation per request between two readings. */
function runOf (result: Result, before: CpuReading, after: CpuReading): Run {
  const completed = result.requests.total
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, completed,
    ...perRequestOf(before, after, completed) }
}

async function cpuReading (target: Target): Promise<CpuReading> {
  return await readCpu(target.child, target.label)
}


async function measure (target: Target, redis: Redis): Promise<Run> {
  if (target.renewHeaders !== undefined) target.headers = await target.renewHeaders()
  if (WARMUP > 0) await load(target, WARMUP)
  await sleep(200) // let the warm-up's last requests finish before the Redis snapshot
  const before = target.redis ? await commandStats(redis) : undefined
  const redisCpuBefore = await redisCpuMicros(redis)
  const readingBefore = await cpuReading(target)
  const result = await load(target, DURATION)
  const reading = await cpuReading(target)
  const redisCpu = await redisCpuMicros(redis) - redisCpuBefore
  const completed = result.requests.total
  const run = runOf(result, readingBefore, reading)
  if (before !== undefined) {
    await sleep(200)
    run.redisCommands = diff(await commandStats(redis), before)
    run.redisCpuPerRequest = redisCpu / completed
  }
  return run
}

interface Audit { requests: number, roundTrips: Record<string, number>, inScripts: Record<string, number> }

/**
 * Round trips per request, exactly: MONITOR shows every command a client sent, and marks the
 * commands a Lua script ran as coming from `lua`. Sequential requests, outside the timed runs.
 */
async function auditRoundTrips (target: Target, redisUrl: string): Promise<Audit> {
  const client = new Redis(redisUrl, { lazyConnect: true })
  await client.connect()
  const monitor = await client.monitor()
  const roundTrips: Record<string, number> = {}
  const inScripts: Record<string, number> = {}
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const name = (args[0] ?? '').toLowerCase()
    const counts = source === 'lua' ? inScripts : roundTrips
    counts[name] = (counts[name] ?? 0) + 1
  })
  await sleep(100)
  for (let i = 0; i < AUDIT_REQUESTS; i++) {
    const res = await fetch(target.url + ORDERS_PATH, { headers: { ...target.headers, ...target.perRequest?.() } })
    await res.arrayBuffer()
    if (res.status !== 200) invalid(`${target.label} audit: status ${res.status}`)
  }
  await sleep(200)
  monitor.disconnect()
  client.disconnect()
  return { requests: AUDIT_REQUESTS, roundTrips, inScripts }
}

type LatencyTargetId = typeof LATENCY_TARGETS[number]
/** A latency run (microseconds) with the target process's CPU, GC pause and allocation per request. */
type LatencyRun = LatencyResult & { cpuPerRequest: number, gcMsPer1000: number, allocKbPerRequest: number }

/**
 * The latency a client sees at `connections` connections, each sending its next request when the
 * last answer is in: wrk -t1 when installed, else the undici client (bench/latency-client.ts).
 */
async function latencyRun (target: Target, connections: number, useWrk: boolean): Promise<LatencyRun> {
  const run = useWrk ? wrkRun : undiciRun
  const url = target.url + ORDERS_PATH
  const valid = (result: LatencyResult): LatencyResult => {
    if (result.non2xx > 0 || result.socketErrors > 0 || result.requests === 0) {
      invalid(`${target.label}, ${connections} connection(s): ${result.non2xx} non-2xx, ${result.socketErrors} socket errors, ` +
        `${result.requests} requests (${result.tool})`)
    }
    return result
  }
  if (WARMUP > 0) valid(await run(url, target.headers, connections, WARMUP))
  const before = await cpuReading(target)
  const result = valid(await run(url, target.headers, connections, DURATION))
  const after = await cpuReading(target)
  return { ...result, ...perRequestOf(before, after, result.requests) }
}

interface AddedLatency { rate: number, upstream: Run, gateway: Run }

/**
 * The latency the gateway adds, measured at half of its peak rate (an open-loop fixed rate, so
 * queueing at saturation does not hide in the figure): the gateway and the upstream alone, each
 * at the same rate, interleaved once.
 */
async function addedLatency (gateway: Target, upstream: Target, peak: number): Promise<AddedLatency> {
  const rate = Math.max(1, Math.round(peak / 2))
  const at = async (target: Target): Promise<Run> => {
    const result = await load(target, DURATION, rate)
    return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, completed: result.requests.total,
      cpuPerRequest: 0 }
  }
  const up = await at(upstream)
  const gw = await at(gateway)
  return { rate, upstream: up, gateway: gw }
}

interface AuthRates { loginsPerSecond: number, refreshesPerSecond: number, workers: number }

/**
 * Logins/s and refreshes/s through the full chain, each for DURATION seconds with a few concurrent
 * workers: a login is one argon2id verification in the users stub; a refresh is one rotation
 * script in Redis and two ES256 signatures. Every answer must be 200 or the run is invalid.
 */
async function authRates (gatewayUrl: string): Promise<AuthRates> {
  const workers = 4
  const post = async (path: string, body: unknown): Promise<{ refresh: string }> => {
    const res = await fetch(gatewayUrl + path, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body) })
    const json = await res.json() as { refresh: string }
    if (res.status !== 200) invalid(`${path}: status ${res.status} ${JSON.stringify(json)}`)
    return json
  }
  const during = async (work: () => Promise<void>): Promise<number> => {
    const until = Date.now() + DURATION * 1000
    let done = 0
    await Promise.all(Array.from({ length: workers }, async () => {
      while (Date.now() < until) { await work(); done++ }
    }))
    return done / DURATION
  }
  const login = { username: 'alice', password: 'alice-password' }
  const loginsPerSecond = await during(async () => { await post('/auth/login', login) })
  const chains = await Promise.all(Array.from({ length: workers }, () => post('/auth/login', login)))
  let next = 0
  const refreshesPerSecond = await during(async () => {
    const i = next++ % workers
    chains[i] = await post('/auth/refresh', { refresh: chains[i]!.refresh })
  })
  return { loginsPerSecond, refreshesPerSecond, workers }
}

function median (runs: Run[]): Run {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

// ---------------------------------------------------------------------------------------------
// Report

function machine (redisVersion: string, loadBefore: number): Record<string, string> {
  let cpuModel = cpus()[0]?.model ?? 'unknown'
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'))
    if (line !== undefined) cpuModel = line.split(':').slice(1).join(':').trim()
  } catch { /* not Linux */ }
  return {
    Date: new Date().toISOString(),
    Node: process.version,
    'redis-server': redisVersion,
    CPU: cpuModel,
    Cores: String(availableParallelism()),
    Memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    Kernel: `${process.platform} ${release()}`,
    'Load average (1 min) before / after the run': `${loadBefore.toFixed(2)} / ${loadavg()[0]!.toFixed(2)}`
  }
}

/** A difference with its sign. */
const signed = (n: number, digits = 0): string => `${n >= 0 ? '+' : '−'}${fmt(Math.abs(n), digits)}`
const perRequest = (counts: Record<string, number>, requests: number): string =>
  Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name.toUpperCase()} ${(n / requests).toFixed(2)}`).join(', ')
    || 'none'

interface Report {
  targets: Target[]
  runs: Map<TargetId, Run[]>
  audits: Map<TargetId, Audit>
  latency: AddedLatency
  /** The bare proxy at the same fixed rate (half of the gateway's peak). */
  bareAtHalf: Run
  /** Latency runs by target and connections (`${id}@${connections}`), one per round. */
  lowLoad: Map<string, LatencyRun[]>
  latencyTool: 'wrk' | 'undici'
  auth: AuthRates
}

/** The latency runs of a target at `connections` (one per round). */
function lowLoadOf ({ lowLoad }: Report, id: LatencyTargetId, connections: number): LatencyRun[] {
  return lowLoad.get(`${id}@${connections}`) ?? []
}

/** A figure of the latency runs, the median over the rounds. */
function lowLoadMedian (report: Report, id: LatencyTargetId, connections: number, figure: (r: LatencyRun) => number): number {
  return medianOf(lowLoadOf(report, id, connections).map(figure))
}

/** Every Redis command over a target's measured runs, per completed request (commands run inside Lua scripts included). */
function commandsPerRequest (runs: Run[]): number {
  const commands = runs.reduce((acc, r) => acc + sum(r.redisCommands ?? {}), 0)
  return commands / runs.reduce((acc, r) => acc + r.completed, 0)
}

/** Round trips per request in a MONITOR audit, without the PINGs (the invalidation connection's time-based heartbeat). */
function auditTrips (audit: Audit): { all: number, withoutPing: number, pings: number } {
  const pings = audit.roundTrips.ping ?? 0
  const all = sum(audit.roundTrips)
  return { all: all / audit.requests, withoutPing: (all - pings) / audit.requests, pings: pings / audit.requests }
}

/** The median of the rounds' figure of a target. */
function runsMedian (runs: Map<TargetId, Run[]>, id: TargetId, figure: (r: Run) => number): number {
  return medianOf(runs.get(id)!.map(figure))
}

/** The figures the performance issues set goals for, each a ratio or a figure of this one run. */
function goals (report: Report): string {
  const { targets, runs, latency, bareAtHalf, auth, audits, latencyTool } = report
  const rps = (id: TargetId): number => median(runs.get(id)!).rps
  const cpuOf = (id: TargetId): number => runsMedian(runs, id, (r) => r.cpuPerRequest)
  const kbOf = (id: TargetId): number => runsMedian(runs, id, (r) => r.allocKbPerRequest ?? 0)
  const gcOf = (id: TargetId): number => runsMedian(runs, id, (r) => r.gcMsPer1000 ?? 0)
  const cpu = cpuOf('cached')
  const chain = rps('chain') / rps('cached')
  const bare = rps('cached') / rps('bare')
  const trips = commandsPerRequest(runs.get('cached')!)
  const p99Added = latency.gateway.p99 - latency.upstream.p99
  const mark = (ok: boolean): string => ok ? 'met' : '**not met**'
  const p99Row = (connections: number): string => {
    const bareP99 = lowLoadMedian(report, 'bare', connections, (r) => r.p99)
    const gatewayP99 = lowLoadMedian(report, 'cached', connections, (r) => r.p99)
    const factor = gatewayP99 / bareP99
    return `| p99 at ${connections} connection${connections === 1 ? '' : 's'} (${latencyTool}): gateway (cache on) ≤ ` +
      `${TARGET_P99_FACTOR} × bare proxy | ${fmt(gatewayP99)} µs / ${fmt(bareP99)} µs = ${factor.toFixed(3)} × | ` +
      `${mark(factor <= TARGET_P99_FACTOR)} |`
  }
  const extraKb = kbOf('cached') - kbOf('bare')
  const extraKbAt = (connections: number): string => {
    const kb = (id: LatencyTargetId): number => lowLoadMedian(report, id, connections, (r) => r.allocKbPerRequest)
    return `${signed(kb('cached') - kb('bare'), 1)} KB (${fmt(kb('cached'), 1)} − ${fmt(kb('bare'), 1)})`
  }
  const dpop = audits.get('dpop')
  return [
    '| Goal | Figure | |',
    '|---|---:|---|',
    `| full chain (gateway → orders stub) / gateway → node:http ≥ ${TARGET_RATIO} | ${chain.toFixed(3)} | ${mark(chain >= TARGET_RATIO)} |`,
    `| gateway (token cache on) / bare proxy ≥ ${TARGET_RATIO} | ${bare.toFixed(3)} | ${mark(bare >= TARGET_RATIO)} |`,
    `| Redis round trips per proxied request ≤ ${TARGET_ROUND_TRIPS}, gateway (cache on), steady state: every command over the ` +
      `measured runs / requests (an upper bound) | ${trips.toFixed(3)} | ${mark(trips <= TARGET_ROUND_TRIPS)} |`,
    ...(dpop !== undefined
      ? [`| DPoP-bound requests (the exception: the proof's \`jti\`), Redis round trips per request (audit, heartbeat PINGs left out) ` +
        `| ${auditTrips(dpop).withoutPing.toFixed(2)} | figure |`]
      : []),
    ...LATENCY_CONNECTIONS.map(p99Row),
    `| allocation per proxied request, gateway (cache on) − bare proxy ≤ ${TARGET_EXTRA_KB} KB (${CONNECTIONS} connections) | ` +
      `${signed(extraKb, 2)} KB (${fmt(kbOf('cached'), 1)} − ${fmt(kbOf('bare'), 1)}) | ${mark(extraKb <= TARGET_EXTRA_KB)} |`,
    ...LATENCY_CONNECTIONS.map((c) => `| allocation per proxied request, gateway (cache on) − bare proxy, ${c} ` +
      `connection${c === 1 ? '' : 's'} | ${extraKbAt(c)} | figure |`),
    `| GC pause per 1,000 requests (${CONNECTIONS} connections): bare proxy / gateway (cache on) / SESSION_CACHE=off | ` +
      `${fmt(gcOf('bare'), 1)} / ${fmt(gcOf('cached'), 1)} / ${fmt(gcOf('sessionOff'), 1)} ms | figure |`,
    `| gateway CPU per proxied request ≤ 130 µs | ${fmt(cpu)} µs | ${mark(cpu <= 130)} |`,
    ...targets.filter((t) => t.id === 'bareCheck' || t.id === 'leanCheck').map((t) =>
      `| ${t.label}, CPU per request (× bare proxy) | ${fmt(cpuOf(t.id))} µs (${(rps(t.id) / rps('bare')).toFixed(2)}) | figure |`),
    `| p50 / p99 added at half of peak (${fmt(latency.rate)} req/s), p99 added ≤ 2 ms ` +
      `| ${fmt(latency.gateway.p50 - latency.upstream.p50, 1)} / ${fmt(p99Added, 1)} ms | ${mark(p99Added <= 2)} |`,
    `| p50 / p99 at half of the gateway's peak (${fmt(latency.rate)} req/s, autocannon, whole ms): bare proxy / gateway (cache on) ` +
      `| ${fmt(bareAtHalf.p50)} / ${fmt(bareAtHalf.p99)} ms, ${fmt(latency.gateway.p50)} / ${fmt(latency.gateway.p99)} ms | figure |`,
    `| logins/s through the full chain (${auth.workers} workers; argon2id m=19 MiB, t=2, p=1) | ${fmt(auth.loginsPerSecond, 1)} | figure |`,
    `| refreshes/s through the full chain (${auth.workers} sessions) | ${fmt(auth.refreshesPerSecond, 1)} | figure |`
  ].join('\n')
}

function table ({ targets, runs }: Report): string {
  const bare = median(runs.get('bare')!).rps
  const rows = targets.map((t) => {
    const all = runs.get(t.id)!
    const m = median(all)
    const range = `${fmt(Math.min(...all.map((r) => r.rps)))}–${fmt(Math.max(...all.map((r) => r.rps)))}`
    const redis = t.redis ? commandsPerRequest(all).toFixed(2) : '–'
    const cpu = medianOf(all.map((r) => r.cpuPerRequest))
    const redisCpu = t.redis ? fmt(medianOf(all.map((r) => r.redisCpuPerRequest ?? 0))) : '–'
    const gc = fmt(medianOf(all.map((r) => r.gcMsPer1000 ?? 0)), 1)
    const kb = fmt(medianOf(all.map((r) => r.allocKbPerRequest ?? 0)), 1)
    return `| ${t.label} | ${fmt(m.rps)} | ${range} | ${fmt(m.p50, 0)} | ${fmt(m.p99, 0)} | 0 / 0 | ${(m.rps / bare).toFixed(2)} ` +
      `| ${fmt(cpu)} | ${redisCpu} | ${redis} | ${gc} | ${kb} |`
  })
  return [
    '| Target | req/s (median round) | req/s (all rounds) | p50 ms | p99 ms | errors / non-2xx | × bare proxy | CPU µs / request ' +
      '(target) | CPU µs / request (redis-server) | Redis commands / request | GC pause ms / 1,000 requests (target) | KB allocated / ' +
      'request (target) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows
  ].join('\n')
}

/** The latency runs at 1 and 8 connections: each figure is the median of the rounds, taken on its own. */
function latencyTable (report: Report): string {
  const rows: string[] = []
  for (const connections of LATENCY_CONNECTIONS) {
    for (const id of LATENCY_TARGETS) {
      const all = lowLoadOf(report, id, connections)
      if (all.length === 0) continue
      const m = (figure: (r: LatencyRun) => number): number => medianOf(all.map(figure))
      const label = report.targets.find((t) => t.id === id)!.label
      rows.push(`| ${label} | ${connections} | ${fmt(m((r) => r.rps))} | ${fmt(m((r) => r.p50))} | ${fmt(m((r) => r.p90))} | ` +
        `${fmt(m((r) => r.p99))} | ${all.map((r) => fmt(r.p99)).join(', ')} | ${fmt(m((r) => r.max))} | ` +
        `${fmt(m((r) => r.cpuPerRequest))} | ` +
        `${fmt(m((r) => r.gcMsPer1000), 1)} | ${fmt(m((r) => r.allocKbPerRequest), 1)} |`)
    }
  }
  return [
    '| Target | connections | req/s | p50 µs | p90 µs | p99 µs | p99 µs (all rounds) | max µs | CPU µs / request | GC pause ms / 1,000 ' +
      'requests | KB allocated / request |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows
  ].join('\n')
}

function redisSection ({ targets, runs, audits }: Report): string {
  const lines: string[] = []
  for (const t of targets.filter((x) => x.redis)) {
    const all = runs.get(t.id)!
    const commands: Record<string, number> = {}
    for (const r of all) for (const [name, n] of Object.entries(r.redisCommands ?? {})) commands[name] = (commands[name] ?? 0) + n
    const completed = all.reduce((acc, r) => acc + r.completed, 0)
    const audit = audits.get(t.id)!
    const trips = auditTrips(audit)
    lines.push(`- **${t.label}**: ${(sum(commands) / completed).toFixed(3)} commands per request over ${fmt(completed)} requests ` +
      `(INFO commandstats, commands run inside Lua scripts included: ${perRequest(commands, completed)}); ` +
      `**${trips.all.toFixed(2)} round trip(s) per request**, ${trips.withoutPing.toFixed(2)} without the PINGs (MONITOR, ` +
      `${audit.requests} sequential requests: sent ${perRequest(audit.roundTrips, audit.requests)}; inside the script ` +
      `${perRequest(audit.inScripts, audit.requests)}).`)
  }
  return lines.join('\n')
}

function interpretation (report: Report, loadBefore: number): string {
  const { runs, audits, latencyTool } = report
  const cpu = (id: TargetId): number => runsMedian(runs, id, (r) => r.cpuPerRequest)
  const redisCpu = (id: TargetId): number => runsMedian(runs, id, (r) => r.redisCpuPerRequest ?? 0)
  const kb = (id: TargetId): number => runsMedian(runs, id, (r) => r.allocKbPerRequest ?? 0)
  const gc = (id: TargetId): number => runsMedian(runs, id, (r) => r.gcMsPer1000 ?? 0)
  const bare = median(runs.get('bare')!).rps
  const upstream = median(runs.get('upstream')!).rps
  const ratio = (id: TargetId): number => median(runs.get(id)!).rps / bare
  const verdict = (r: number): string => r >= TARGET_RATIO ? `meets the ${TARGET_RATIO} target` : `is below the ${TARGET_RATIO} target`
  const cachedTrips = commandsPerRequest(runs.get('cached')!)
  const cachedAudit = auditTrips(audits.get('cached')!)
  const offAudit = auditTrips(audits.get('sessionOff')!)
  const dpopAudit = auditTrips(audits.get('dpop')!)
  const p99 = (id: LatencyTargetId, c: number): number => lowLoadMedian(report, id, c, (r) => r.p99)
  const p50 = (id: LatencyTargetId, c: number): number => lowLoadMedian(report, id, c, (r) => r.p50)
  const lowKb = (id: LatencyTargetId, c: number): number => lowLoadMedian(report, id, c, (r) => r.allocKbPerRequest)
  const latencyLine = (c: number): string =>
    `at ${c} connection${c === 1 ? '' : 's'}, p50 / p99 bare proxy ${fmt(p50('bare', c))} / ${fmt(p99('bare', c))} µs, ` +
    'gateway (cache on) ' +
    `${fmt(p50('cached', c))} / ${fmt(p99('cached', c))} µs (p99 ${(p99('cached', c) / p99('bare', c)).toFixed(3)} × the bare proxy's), ` +
    `SESSION_CACHE=off ${fmt(p50('sessionOff', c))} / ${fmt(p99('sessionOff', c))} µs`
  return [
    `- The bare proxy reaches ${(bare / upstream * 100).toFixed(0)} % of the upstream's own rate: that is the price of one extra HTTP ` +
      'hop (and of a fourth busy process on the same cores), the same for every proxy.',
    `- Gateway / bare proxy: **${ratio('cached').toFixed(3)}** with the verified-token and session caches (${verdict(ratio('cached'))}), ` +
      `${ratio('sessionOff').toFixed(3)} with SESSION_CACHE=off, ${ratio('uncached').toFixed(3)} with TOKEN_CACHE_SIZE=0. On top of ` +
      'the bare proxy the gateway does, per request: path normalization, security headers, request id, token verification (a Map ' +
      'lookup when cached, an ES256 signature check when not), the session check (from the replica\'s session cache, invalidated by ' +
      'Redis; one Redis round trip with SESSION_CACHE=off), the per-user counter (counted on the replica and sent in batches), the ' +
      'identity headers and assertion (reused from its cache), limit headers and the metrics.',
    `- CPU per request (median round): bare proxy ${fmt(cpu('bare'))} µs; gateway ${fmt(cpu('cached'))} µs with the caches, ` +
      `${fmt(cpu('sessionOff'))} µs with SESSION_CACHE=off and ${fmt(cpu('uncached'))} µs with TOKEN_CACHE_SIZE=0; redis-server ` +
      `${fmt(redisCpu('cached'))} µs per request for the cached gateway, ${fmt(redisCpu('sessionOff'))} µs with SESSION_CACHE=off. With ` +
      'two cores shared by autocannon, the target, the upstream and Redis, throughput follows the CPU per request of all of them; ' +
      `bare CPU / (gateway CPU + Redis CPU) is ${(cpu('bare') / (cpu('cached') + redisCpu('cached'))).toFixed(2)} (cached), and the ` +
      'throughput ratio is higher because autocannon and the upstream cost the same for every target.' +
      (ratio('cached') >= TARGET_RATIO ? '' : ' Reaching 0.8 needs the gateway\'s CPU per request to come down.'),
    `- Floors: the contract's per-request check (the session and the user's counter in one Redis round trip), alone in front of the ` +
      `bare proxy, costs ${fmt(cpu('bareCheck'))} µs per request (${signed(cpu('bareCheck') - cpu('bare'))} µs over the bare proxy; ` +
      `${ratio('bareCheck').toFixed(2)} of its throughput); in front of the lean undici path ${fmt(cpu('leanCheck'))} µs ` +
      `(${ratio('leanCheck').toFixed(2)}). The gateway with SESSION_CACHE=off pays the same round trip as the first floor and ` +
      `spends ${signed(cpu('sessionOff') - cpu('bareCheck'))} µs per request beyond it: token, route, roles, headers both ways, ` +
      'assertion, limit headers, security headers, request id and metrics. The session cache saves ' +
      `${fmt(cpu('sessionOff') - cpu('cached'))} µs of the gateway's CPU and ${fmt(redisCpu('sessionOff') - redisCpu('cached'))} µs of ` +
      `redis-server's per request; with it the gateway costs ${signed(cpu('cached') - cpu('bare'))} µs over the bare proxy.`,
    `- Redis: with the session cache, ${cachedTrips.toFixed(3)} commands per proxied request over the measured runs (every command ` +
      'counted, those inside Lua scripts too, so an upper bound on round trips). The MONITOR audit\'s ' +
      `${cachedAudit.all.toFixed(2)} round trips per request are ${cachedAudit.pings.toFixed(2)} PINGs and ` +
      `${cachedAudit.withoutPing.toFixed(2)} others: the PINGs are the invalidation connection's heartbeat (every 250 ms) and the ` +
      'counters go to Redis in a batch every LIMIT_SYNC_MS: both are per unit of time, not per request, so their share per request ' +
      'shrinks with the rate (the audit\'s sequential requests are slow). A counter is also sent at once after floor(limit / 100) ' +
      'unconfirmed hits, which the bench\'s limit (100,000,000 per minute) never reaches. With SESSION_CACHE=off ' +
      `${offAudit.withoutPing.toFixed(2)} round trips per request, the session check and the counter in one EVALSHA; DPoP-bound ` +
      `requests ${dpopAudit.withoutPing.toFixed(2)} (the proof's jti must be unique across replicas). The commands that INFO ` +
      'commandstats counts inside a script (HGET, INCR, PTTL) are not network round trips.',
    `- Latency (${latencyTool}, each connection sending its next request when the last answer is in): ${latencyLine(1)}; ` +
      `${latencyLine(8)}.`,
    `- Allocation: the gateway (cache on) allocates ${fmt(kb('cached'), 1)} KB per proxied request at ${CONNECTIONS} connections, ` +
      `${signed(kb('cached') - kb('bare'), 1)} KB over the bare proxy's ${fmt(kb('bare'), 1)} KB (at 1 connection ` +
      `${signed(lowKb('cached', 1) - lowKb('bare', 1), 1)} KB, at 8 ${signed(lowKb('cached', 8) - lowKb('bare', 8), 1)} KB); ` +
      `SESSION_CACHE=off ${fmt(kb('sessionOff'), 1)} KB. GC pauses per 1,000 requests: bare proxy ${fmt(gc('bare'), 1)} ms, gateway ` +
      `${fmt(gc('cached'), 1)} ms, SESSION_CACHE=off ${fmt(gc('sessionOff'), 1)} ms. Allocation per request hardly depends on the ` +
      'load; it is the figure to compare on a busy machine.',
    '- Everything runs on one machine: autocannon, the target, the upstream and Redis share the cores, so the absolute numbers are ' +
      'a floor, and the ratios are what compares. Rounds are interleaved so that drift of the machine affects every target alike.',
    ...(loadBefore > availableParallelism() / 2
      ? [`- The machine was busy with other work during this run (load average ${loadBefore.toFixed(1)} on ${availableParallelism()} ` +
        `cores): ` +
          'requests/s varied between rounds; CPU per request is the steadier figure.']
      : [])
  ].join('\n')
}

/** A hand-written section of BENCHMARKS.md from this heading on is kept when the file is rewritten. */
const NOTES_HEADING = '## Notes'

function keptNotes (file: string): string {
  let text: string
  try { text = readFileSync(file, 'utf8') } catch { return '' }
  const at = text.indexOf('\n' + NOTES_HEADING)
  return at === -1 ? '' : '\n' + text.slice(at + 1)
}

function markdown (report: Report, info: Record<string, string>, loadBefore: number, notes: string): string {
  return `# Benchmarks

## Proxy overhead (\`make bench\`)

### How to run

\`\`\`sh
make bench                          # build, make sure redis-server, nginx and wrk exist, run bench/proxy-bench.ts
BENCH_WRITE=1 make bench            # ... and rewrite this file with the results
BENCH_DURATION=10 BENCH_CONNECTIONS=100 BENCH_ROUNDS=5 make bench
BENCH_CPU_PROF=.profiles make bench # also write a V8 CPU profile of each server process
\`\`\`

\`make bench-jwt\` measures access-token verification alone (jose and our LRU against fast-jwt, the verifier under @fastify/jwt;
\`bench/jwt-verify-bench.ts\`, \`BENCH_JWT_ROUNDS\`, \`BENCH_JWT_MS\`); it prints a table and writes nothing. Its results are in the notes.

A hand-written \`${NOTES_HEADING}\` section at the end of this file is kept when it is rewritten.

Options: \`BENCH_DURATION\` (seconds per measured run, default 5), \`BENCH_WARMUP\` (seconds of warm-up before each run, default 2),
\`BENCH_CONNECTIONS\` (autocannon connections, default 50), \`BENCH_ROUNDS\` (default 3), \`BENCH_LATENCY_ROUNDS\` (rounds of the wrk
latency runs, default 5). Only 127.0.0.1 is ever contacted.

### What it measures

One run starts its own redis-server (free port, no persistence) and the servers, each in its own process
(\`dist/bench/bench-servers.js\`, forked), while autocannon runs alone in the parent process. Every gateway process gets the
Node/V8 flags \`bin/auth-gateway\` starts the gateway with (\`bin/node-flags.sh\`: ${gatewayNodeFlags().map((f) => `\`${f}\``).join(' ')}),
so the figures are those of the gateway as the image, compose, Kubernetes and \`make run\` start it; the other servers run with
Node's defaults:

- **upstream**: a node:http server answering \`GET /api/orders\` with a small JSON document, no authentication;
- **bare proxy**: Fastify with \`@fastify/http-proxy\` (prefix \`/api/orders\` → the upstream) and nothing else;
- **floor: bare proxy + session check**: the bare proxy with a preHandler doing the one Redis round trip the contract makes every
  authenticated request pay (\`SessionStore.isAliveCounted\` on a live session: alive, live roles, the user's request counted), with
  the gateway's own config, redis-store and session-store plugins; no token, headers, limits or metrics. The least a gateway on
  @fastify/reply-from can cost;
- **floor: undici dispatch + session check**: the same check in front of \`bench/lean-proxy.ts\`, a reference proxy path that hands
  the request to an undici Pool with a dispatch handler writing the answer straight to the client (no body stream, no
  @fastify/reply-from; GET only). The least a gateway on Fastify, undici and ioredis can cost;
- **gateway (cached)**: \`buildGateway\` with the route \`/api/orders\` → the upstream, \`LOG_LEVEL=silent\`, limits out of the way,
  the default \`TOKEN_CACHE_SIZE\` and \`SESSION_CACHE=on\` (docs/session-cache.md), and a valid access token (a session from
  \`SessionStore.create\` and a token from \`TokenService.signAccess\`, built in the gateway's process from its config, key and Redis);
- **gateway, SESSION_CACHE=off**: the same gateway with the per-request session check, one Redis round trip per request;
- **nginx + /auth/check**: Debian's nginx with the shipped \`deploy/edge/nginx/auth-gateway.conf\` in front of the upstream, asking
  a fourth gateway (\`FORWARD_AUTH_PROXIES=127.0.0.1=nginx\`) about every request (forward authentication); its CPU column is that
  gateway's process, nginx's own CPU is not counted;
- **gateway, DPoP-bound token**: the cached gateway again, with a token bound to a DPoP key (\`cnf.jkt\`) sent as
  \`Authorization: DPoP\` with a new proof on every request (made by the bench process): one proof verification per request,
  and the proof's \`jti\` claimed in the session check's script (docs/dpop.md);
- **gateway (uncached)**: the same with \`TOKEN_CACHE_SIZE=0\`, so every request pays an ES256 signature verification;
- **orders stub alone**: the real orders stub (\`services/orders\`) called directly with a valid gateway assertion (renewed before
  each run);
- **full chain**: a third gateway (token cache on) whose \`/api/orders\` upstream is that orders stub and whose users upstream is the
  real users stub: the chain as \`make run\` starts it.

After the rounds, the bare proxy and the gateway with the session cache on and off run at 1 and at 8 connections, interleaved over
${LATENCY_ROUNDS} rounds, under Debian's wrk (\`wrk -t1 -c1\` and \`-c8\`, \`--latency\`, the token in \`-H\`), whose latency
distribution has microsecond resolution (autocannon's is in whole milliseconds); without wrk, a client of the same shape in the bench
process (undici, one loop per connection; \`bench/latency-client.ts\`). Then the gateway (cached) and the upstream alone each run
once more at a fixed rate of half the gateway's peak (autocannon \`overallRate\`) to give the latency the gateway adds; then logins/s
and refreshes/s through the full chain.

Both gateways share one signing key and one Redis, so the same token works for both. Each round runs the targets in this order,
each with a warm-up and then a measured run; the table shows, per target, the round with the median requests/s (its p50 and p99 with it)
and the spread of all rounds. Any connection error, timeout or non-2xx answer invalidates the run (exit code 1).
CPU per request is the target process's own CPU time (\`process.cpuUsage()\`, user + system) during the measured run, and
redis-server's (INFO cpu), divided by the requests completed: on a shared machine it is steadier than requests/s.
Redis commands per request are INFO commandstats (all commands but INFO) before and after each measured gateway run, divided by the
requests that run completed; round trips per request come from a MONITOR audit of ${AUDIT_REQUESTS} sequential requests per gateway,
which tells the commands a client sent from those a Lua script ran. GC pause per 1,000 requests and KB allocated per request are the
target process's (\`v8.GCProfiler\`: the time of every collection, and the heap used before each collection minus the heap the
previous one left) over the same measured run.

### Machine

${Object.entries(info).map(([k, v]) => `- ${k}: ${v}`).join('\n')}

### Results

${ROUNDS} rounds, ${DURATION} s per measured run after ${WARMUP} s of warm-up, ${CONNECTIONS} connections, \`GET /api/orders\`
(command: \`${process.env.BENCH_COMMAND ?? 'make bench'}\`).

${table(report)}

Redis per proxied request:

${redisSection(report)}

Latency at 1 and 8 connections (${report.latencyTool}; each figure is the median of the ${LATENCY_ROUNDS} rounds, taken on its own):

${latencyTable(report)}

### Goals (performance issue)

${goals(report)}

### Interpretation

${interpretation(report, loadBefore)}
${notes}`
}

// ---------------------------------------------------------------------------------------------

async function main (): Promise<void> {
  const started = Date.now()
  const loadBefore = loadavg()[0]!
  if (loadBefore > availableParallelism() / 2) {
    console.warn(
      `warning: the machine is busy (load average ${loadBefore.toFixed(2)} on ${availableParallelism()} cores); the numbers will be noisy`)
  }
  const redisServer = await startRedis()
  const redis = new Redis(redisServer.url, { lazyConnect: true })
  await redis.connect()
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown'

  const jwk = await generatePrivateJwk()
  const upstream = await startServer('upstream', 'upstream')
  const bare = await startServer('bare proxy', 'bare', { upstreamUrl: upstream.url })
  const gatewaySpec: ServerSpec = { upstreamUrl: upstream.url, redisUrl: redisServer.url, jwk }
  const bareCheck = await startServer('floor bare proxy', 'bare-check', gatewaySpec)
  const leanCheck = await startServer('floor lean proxy', 'lean-check', gatewaySpec)
  const cached = await startServer('gateway cached', 'gateway', gatewaySpec)
  const sessionOff = await startServer('gateway SESSION_CACHE=off', 'gateway', { ...gatewaySpec, env: { SESSION_CACHE: 'off' } })
  // Forward authentication: nginx asks this gateway (/auth/check) and forwards to the upstream itself.
  const forward = await startServer('gateway for nginx', 'gateway', { ...gatewaySpec, forwardAuthProxies: '127.0.0.1=nginx' })
  const nginx = await startBenchNginx(forward.url, upstream.url)
  const uncached = await startServer('gateway uncached', 'gateway', { ...gatewaySpec, tokenCacheSize: 0 })
  const ordersStub = await startServer('orders stub', 'orders', { jwk })
  const usersStub = await startServer('users stub', 'users', { jwk })
  const chain = await startServer('full chain', 'gateway', { ...gatewaySpec, upstreamUrl: ordersStub.url, usersUrl: usersStub.url })

  const tokenReply = nextMessage(cached.child, 'gateway cached', 'token')
  cached.child.send({ type: 'token' } satisfies ParentMessage)
  const { token } = await tokenReply as { token: string }
  const auth = { authorization: `Bearer ${token}` }
  // DPoP: a token bound to the bench's key, and a new proof for every request (signed in this process, not the gateway's).
  const prover = await dpopProver(cached.url + ORDERS_PATH)
  const boundReply = nextMessage(cached.child, 'gateway cached', 'token')
  cached.child.send({ type: 'token', jkt: prover.jkt } satisfies ParentMessage)
  const { token: boundToken } = await boundReply as { token: string }
  const stubHeaders = async (): Promise<Record<string, string>> => {
    const reply = nextMessage(cached.child, 'gateway cached', 'assertion')
    cached.child.send({ type: 'assertion' } satisfies ParentMessage)
    return { 'x-gateway-assertion': (await reply as { assertion: string }).assertion }
  }

  const targets: Target[] = [
    { id: 'upstream', label: 'upstream (direct)', url: upstream.url, headers: {}, redis: false, child: upstream.child },
    { id: 'bare', label: 'bare @fastify/http-proxy', url: bare.url, headers: {}, redis: false, child: bare.child },
    { id: 'bareCheck', label: 'floor: bare proxy + session check', url: bareCheck.url, headers: {}, redis: true, child: bareCheck.child },
    { id: 'leanCheck', label: 'floor: undici dispatch + session check', url: leanCheck.url, headers: {}, redis: true,
      child: leanCheck.child },
    { id: 'cached', label: 'gateway, token cache on', url: cached.url, headers: auth, redis: true, child: cached.child },
    { id: 'sessionOff', label: 'gateway, SESSION_CACHE=off', url: sessionOff.url, headers: auth, redis: true, child: sessionOff.child },
    {
      id: 'dpop',
      label: 'gateway, DPoP-bound token',
      url: cached.url,
      headers: { authorization: `DPoP ${boundToken}` },
      redis: true,
      child: cached.child,
      perRequest: () => ({ dpop: prover.proof(boundToken) })
    },
    // CPU per request: the gateway's, as for the row above (nginx's own CPU is not counted).
    { id: 'nginxCheck', label: 'nginx + /auth/check → upstream', url: nginx.url, headers: auth, redis: true, child: forward.child },
    { id: 'uncached', label: 'gateway, TOKEN_CACHE_SIZE=0', url: uncached.url, headers: auth, redis: true, child: uncached.child },
    { id: 'stub', label: 'orders stub alone (assertion)', url: ordersStub.url, headers: {}, redis: false, child: ordersStub.child,
      renewHeaders: stubHeaders },
    { id: 'chain', label: 'full chain: gateway → orders stub', url: chain.url, headers: auth, redis: true, child: chain.child }
  ]
  console.log(
    `proxy benchmark: ${ROUNDS} rounds × ${targets.length} targets, ${DURATION} s runs after ${WARMUP} s warm-up, ${CONNECTIONS} ` +
      `connections`)

  const runs = new Map<TargetId, Run[]>(targets.map((t) => [t.id, []]))
  for (let round = 1; round <= ROUNDS; round++) {
    for (const target of targets) {
      const run = await measure(target, redis)
      runs.get(target.id)!.push(run)
      const redisNote = run.redisCommands !== undefined ? `, Redis ${(sum(run.redisCommands) / run.completed).toFixed(2)} ` +
        `commands/request, ${fmt(run.redisCpuPerRequest ?? 0)} µs Redis CPU/request` : ''
      const gcNote = `, GC ${(run.gcMsPer1000 ?? 0).toFixed(1)} ms/1000 req, ${(run.allocKbPerRequest ?? 0).toFixed(1)} KB allocated/req`
      console.log(`round ${round}  ${target.label.padEnd(28)} ${fmt(run.rps).padStart(8)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms  ` +
        `${fmt(run.cpuPerRequest)} µs CPU/request${redisNote}${gcNote}`)
    }
  }

  const audits = new Map<TargetId, Audit>()
  for (const target of targets.filter((t) => t.redis)) audits.set(target.id, await auditRoundTrips(target, redisServer.url))
  for (const [id, audit] of audits) {
    const trips = sum(audit.roundTrips)
    console.log(`round trips: ${id.padEnd(11)} ${(trips / audit.requests).toFixed(2)} per request (${JSON.stringify(audit.roundTrips)} ` +
      `over ${audit.requests} sequential requests)`)
  }

  // Latency at 1 and 8 connections with microsecond resolution: bare proxy and gateway (session cache on and off), interleaved.
  const useWrk = await hasWrk()
  if (!useWrk) console.warn('wrk is not installed (Debian package wrk): latency runs use the undici client of bench/latency-client.ts')
  const lowLoad = new Map<string, LatencyRun[]>()
  for (let round = 1; round <= LATENCY_ROUNDS; round++) {
    for (const connections of LATENCY_CONNECTIONS) {
      for (const target of targets.filter((t) => (LATENCY_TARGETS as readonly string[]).includes(t.id))) {
        const run = await latencyRun(target, connections, useWrk)
        const key = `${target.id}@${connections}`
        lowLoad.set(key, [...(lowLoad.get(key) ?? []), run])
        console.log(`${connections} connection(s), round ${round}  ${target.label.padEnd(28)} ${fmt(run.rps).padStart(8)} req/s  ` +
          `p50 ${fmt(run.p50)} µs  p90 ${fmt(run.p90)} µs  p99 ${fmt(run.p99)} µs  max ${fmt(run.max)} µs, ${fmt(run.cpuPerRequest)} µs ` +
          `CPU/request, GC ${run.gcMsPer1000.toFixed(1)} ms/1000 req, ${run.allocKbPerRequest.toFixed(1)} KB/req (${run.tool})`)
      }
    }
  }
  for (const id of LATENCY_TARGETS) {
    const list = runs.get(id)!
    console.log(`${CONNECTIONS} connections, ${id.padEnd(11)} GC ${medianOf(list.map((r) => r.gcMsPer1000 ?? 0)).toFixed(1)} ms per 1000 ` +
      `requests, ${medianOf(list.map((r) => r.allocKbPerRequest ?? 0)).toFixed(1)} KB allocated per request (median of rounds)`)
  }

  const cachedTarget = targets.find((t) => t.id === 'cached')!
  const latency = await addedLatency(cachedTarget, targets.find((t) => t.id === 'upstream')!, median(runs.get('cached')!).rps)
  console.log(
    `\nat ${fmt(latency.rate)} req/s (half of the gateway's peak): upstream p50 ${latency.upstream.p50} / ` +
      `p99 ${latency.upstream.p99} ms, ` +
    `gateway p50 ${latency.gateway.p50} / p99 ${latency.gateway.p99} ms`)
  const bareAtHalf = await addedLatency(
    targets.find((t) => t.id === 'bare')!,
    targets.find((t) => t.id === 'upstream')!,
    median(runs.get('cached')!).rps
  )
  console.log(`at the same rate: bare proxy p50 ${bareAtHalf.gateway.p50} / p99 ${bareAtHalf.gateway.p99} ms`)
  const authFigures = await authRates(chain.url)
  console.log(
    `logins/s ${fmt(authFigures.loginsPerSecond, 1)}, refreshes/s ${fmt(authFigures.refreshesPerSecond, 1)} (${authFigures.workers} ` +
      `workers, full chain)`)

  const report: Report = { targets, runs, audits, latency, bareAtHalf: bareAtHalf.gateway, lowLoad, latencyTool: useWrk ? 'wrk' : 'undici',
    auth: authFigures }
  const info = machine(redisVersion, loadBefore)
  const bareRps = median(runs.get('bare')!).rps
  console.log('\n' + table(report) + '\n')
  console.log(`ratio gateway (cached) / bare proxy:   ${(median(runs.get('cached')!).rps / bareRps).toFixed(3)}`)
  console.log(`ratio gateway (uncached) / bare proxy: ${(median(runs.get('uncached')!).rps / bareRps).toFixed(3)}`)
  console.log('\n' + latencyTable(report))
  console.log('\nRedis per proxied request:\n' + redisSection(report))
  console.log('\nGoals:\n' + goals(report))
  console.log('\n' + Object.entries(info).map(([k, v]) => `${k}: ${v}`).join('\n'))

  if (WRITE) {
    const file = fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url))
    writeFileSync(file, markdown(report, info, loadBefore, keptNotes(file)))
    console.log(`\nwrote ${file}`)
  }

  await nginx.stop()
  for (const server of [
    chain,
    cached,
    sessionOff,
    forward,
    uncached,
    bareCheck,
    leanCheck,
    bare,
    ordersStub,
    usersStub,
    upstream
  ]) await stopServer(server.child)
  redis.disconnect()
  await redisServer.stop()
  console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(0)} s`)
}

main().catch((err: Error) => {
  console.error(err)
  // process.exit kills the server processes (bench/bench-children.ts).
  process.exit(1)
})
