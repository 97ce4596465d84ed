/**
 * `make bench`: the proxy benchmark. One run measures, interleaved, nine targets behind the same
 * upstream, each in its own process (autocannon runs here, alone on its event loop):
 *
 *   upstream         the upstream directly (node:http, GET /api/orders → small JSON)
 *   bare proxy       @fastify/http-proxy in front of it and nothing else
 *   floor (bare)     the bare proxy + the gateway's session check (SessionStore.isAliveCounted, one EVALSHA)
 *   floor (lean)     an undici dispatch proxy (bench/lean-proxy.ts) + the same check
 *   gateway cached   the gateway (buildGateway) with a valid token, verified-token cache on (default)
 *   nginx + check    nginx (deploy/edge/nginx/auth-gateway.conf) asking a gateway's /auth/check, then
 *                    forwarding to the upstream itself; CPU per request is that gateway's
 *   gateway uncached the same with TOKEN_CACHE_SIZE=0 (an ES256 verification per request)
 *   orders stub     the real orders stub alone, called with a valid gateway assertion
 *   full chain      the gateway (cached) in front of the real orders stub, as `make run` runs them
 *
 * After the rounds: the latency the gateway adds at half of its peak rate (gateway vs upstream at
 * the same fixed rate), and logins/s and refreshes/s through the full chain (argon2id-bound).
 * Each round runs every target once (warm-up, then the measured run); the report shows the median
 * round of each target, the ratios gateway/bare proxy, and the Redis commands per proxied request
 * (INFO commandstats before and after each gateway run, and a MONITOR audit of round trips).
 *
 * Environment: BENCH_DURATION (s, 5), BENCH_WARMUP (s, 2), BENCH_CONNECTIONS (50), BENCH_ROUNDS (3),
 * BENCH_WRITE=1 (write BENCHMARKS.md), BENCH_CPU_PROF=<dir> (--cpu-prof of every server process).
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
import { nextMessage, startServer as startChild, stopServer, type ServerRole } from './bench-children.js'
import { startRedis } from '../dev-tools/redis-server.js'
import { envInt } from '../dev-tools/env-int.js'
import { startBenchNginx } from './edge-nginx.js'
import { dpopProver } from './dpop-prover.js'

const ORDERS_PATH = '/api/orders'

const DURATION = envInt('BENCH_DURATION', 5, 1)
const WARMUP = envInt('BENCH_WARMUP', 2, 0)
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 50, 1)
const ROUNDS = envInt('BENCH_ROUNDS', 3, 1)
const WRITE = process.env.BENCH_WRITE === '1'
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF
const AUDIT_REQUESTS = 100
const TARGET_RATIO = 0.8

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

interface CpuReading { micros: number, gcMicros: number, allocatedBytes: number }

/** A measured run: throughput, latency, and the gateway's CPU, GC and allocation per request between two readings. */
function runOf (result: Result, before: CpuReading, after: CpuReading): Run {
  const completed = result.requests.total
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    completed,
    cpuPerRequest: (after.micros - before.micros) / completed,
    gcMsPer1000: (after.gcMicros - before.gcMicros) / completed,
    allocKbPerRequest: (after.allocatedBytes - before.allocatedBytes) / completed / 1024
  }
}

async function cpuReading (target: Target): Promise<CpuReading> {
  const reply = nextMessage(target.child, target.label, 'cpu')
  target.child.send({ type: 'cpu' } satisfies ParentMessage)
  return await reply as CpuReading
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

function medianOf (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
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

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const perRequest = (counts: Record<string, number>, requests: number): string =>
  Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name.toUpperCase()} ${(n / requests).toFixed(2)}`).join(', ')
    || 'none'

interface Report {
  targets: Target[]
  runs: Map<TargetId, Run[]>
  audits: Map<TargetId, Audit>
  latency: AddedLatency
  auth: AuthRates
}

/** The figures the performance issue sets goals for, each a ratio or a figure of this one run. */
function goals ({ targets, runs, latency, auth }: Report): string {
  const rps = (id: TargetId): number => median(runs.get(id)!).rps
  const cpuOf = (id: TargetId): number => medianOf(runs.get(id)!.map((r) => r.cpuPerRequest))
  const cpu = cpuOf('cached')
  const chain = rps('chain') / rps('cached')
  const bare = rps('cached') / rps('bare')
  const p99Added = latency.gateway.p99 - latency.upstream.p99
  const mark = (ok: boolean): string => ok ? 'met' : '**not met**'
  return [
    '| Goal | Figure | |',
    '|---|---:|---|',
    `| full chain (gateway → orders stub) / gateway → node:http ≥ ${TARGET_RATIO} | ${chain.toFixed(2)} | ${mark(chain >= TARGET_RATIO)} |`,
    `| gateway (token cache on) / bare proxy ≥ ${TARGET_RATIO} | ${bare.toFixed(2)} | ${mark(bare >= TARGET_RATIO)} |`,
    `| gateway CPU per proxied request ≤ 130 µs | ${fmt(cpu)} µs | ${mark(cpu <= 130)} |`,
    ...targets.filter((t) => t.id === 'bareCheck' || t.id === 'leanCheck').map((t) =>
      `| ${t.label}, CPU per request (× bare proxy) | ${fmt(cpuOf(t.id))} µs (${(rps(t.id) / rps('bare')).toFixed(2)}) | figure |`),
    `| p50 / p99 added at half of peak (${fmt(latency.rate)} req/s), p99 added ≤ 2 ms ` +
      `| ${fmt(latency.gateway.p50 - latency.upstream.p50, 1)} / ${fmt(p99Added, 1)} ms | ${mark(p99Added <= 2)} |`,
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
    let redis = '–'
    if (t.redis) {
      const commands = all.reduce((acc, r) => acc + sum(r.redisCommands ?? {}), 0)
      const completed = all.reduce((acc, r) => acc + r.completed, 0)
      redis = (commands / completed).toFixed(2)
    }
    const cpu = medianOf(all.map((r) => r.cpuPerRequest))
    const redisCpu = t.redis ? fmt(medianOf(all.map((r) => r.redisCpuPerRequest ?? 0))) : '–'
    return `| ${t.label} | ${fmt(m.rps)} | ${range} | ${fmt(m.p50, 0)} | ${fmt(m.p99, 0)} | 0 / 0 | ${(m.rps / bare).toFixed(2)} ` +
      `| ${fmt(cpu)} | ${redisCpu} | ${redis} |`
  })
  return [
    '| Target | req/s (median round) | req/s (all rounds) | p50 ms | p99 ms | errors / non-2xx | × bare proxy | CPU µs / request ' +
      '(target) | CPU µs / request (redis-server) | Redis commands / request |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
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
    const trips = sum(audit.roundTrips) / audit.requests
    lines.push(`- **${t.label}**: ${(sum(commands) / completed).toFixed(2)} commands per request over ${fmt(completed)} requests ` +
      `(INFO commandstats, commands run inside Lua scripts included: ${perRequest(commands, completed)}); ` +
      `**${trips.toFixed(2)} round trip(s) per request** (MONITOR, ${audit.requests} sequential requests: ` +
      `sent ${perRequest(audit.roundTrips, audit.requests)}; inside the script ${perRequest(audit.inScripts, audit.requests)}).`)
  }
  return lines.join('\n')
}

function interpretation ({ runs, audits }: Report, loadBefore: number): string {
  const cpu = (id: TargetId): number => medianOf(runs.get(id)!.map((r) => r.cpuPerRequest))
  const redisCpu = (id: TargetId): number => medianOf(runs.get(id)!.map((r) => r.redisCpuPerRequest ?? 0))
  const bare = median(runs.get('bare')!).rps
  const upstream = median(runs.get('upstream')!).rps
  const cached = median(runs.get('cached')!).rps / bare
  const uncached = median(runs.get('uncached')!).rps / bare
  const trips = Math.max(...[...audits.values()].map((a) => sum(a.roundTrips) / a.requests))
  const verdict = (r: number): string => r >= TARGET_RATIO ? `meets the ${TARGET_RATIO} target` : `is below the ${TARGET_RATIO} target`
  return [
    `- The bare proxy reaches ${(bare / upstream * 100).toFixed(0)} % of the upstream's own rate: that is the price of one extra HTTP ` +
      'hop ' +
      '(and of a fourth busy process on the same cores), the same for every proxy.',
    `- Gateway / bare proxy: **${cached.toFixed(2)}** with the verified-token cache (${verdict(cached)}), ` +
      `**${uncached.toFixed(2)}** with TOKEN_CACHE_SIZE=0 (${verdict(uncached)}). On top of the bare proxy the gateway does, per ` +
        'request: ' +
      'path normalization, security headers, request id, token verification (a Map lookup when cached, an ES256 signature check when ' +
        'not), ' +
      'the session check and per-user counter in Redis, the identity headers and assertion (reused from its cache), and the metrics.',
    `- CPU per request (median round): bare proxy ${fmt(cpu('bare'))} µs; gateway ${fmt(cpu('cached'))} µs with the token cache and ` +
      `${fmt(cpu('uncached'))} µs without it, plus ${fmt(redisCpu('cached'))} µs in redis-server. With two cores shared by autocannon, ` +
      'the target, the upstream and Redis, throughput follows the CPU per request of all of them; bare CPU / (gateway CPU + Redis CPU) ' +
      `is ${(cpu('bare') / (cpu('cached') + redisCpu('cached'))).toFixed(2)} (cached), and the throughput ratio is higher because ` +
      'autocannon and the upstream cost the same for every target. Reaching 0.8 needs the gateway\'s CPU per request to come down.',
    `- Floors: the contract's one Redis round trip per authenticated request (the session check and the user's counter), alone in ` +
      `front of the bare proxy, costs ${fmt(cpu('bareCheck'))} µs per request (${fmt(cpu('bareCheck') - cpu('bare'))} µs over the bare ` +
        `proxy; ` +
      `${(median(runs.get('bareCheck')!).rps / bare).toFixed(2)} of its throughput); in front of the lean undici ` +
        `path ${fmt(cpu('leanCheck'))} µs ` +
      `(${(median(runs.get('leanCheck')!).rps / bare).toFixed(2)}). The gateway spends ${fmt(cpu('cached') - cpu('bareCheck'))} µs per ` +
        `request ` +
      'beyond the first floor: token, route, roles, headers both ways, assertion, limits, security headers, request id and metrics.',
    `- Redis: ${trips.toFixed(2)} round trip(s) per proxied request: the session check and the per-user counter are one EVALSHA; ` +
      'the extra commands counted by INFO commandstats are those the script runs inside Redis (HGET, INCR, PTTL), not network round trips.',
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
make bench                          # build, make sure redis-server exists, run bench/proxy-bench.ts
BENCH_WRITE=1 make bench            # ... and rewrite this file with the results
BENCH_DURATION=10 BENCH_CONNECTIONS=100 BENCH_ROUNDS=5 make bench
BENCH_CPU_PROF=.profiles make bench # also write a V8 CPU profile of each server process
\`\`\`

\`make bench-jwt\` measures access-token verification alone (jose and our LRU against fast-jwt, the verifier under @fastify/jwt;
\`bench/jwt-verify-bench.ts\`, \`BENCH_JWT_ROUNDS\`, \`BENCH_JWT_MS\`); it prints a table and writes nothing. Its results are in the notes.

A hand-written \`${NOTES_HEADING}\` section at the end of this file is kept when it is rewritten.

Options: \`BENCH_DURATION\` (seconds per measured run, default 5), \`BENCH_WARMUP\` (seconds of warm-up before each run, default 2),
\`BENCH_CONNECTIONS\` (autocannon connections, default 50), \`BENCH_ROUNDS\` (default 3). Only 127.0.0.1 is ever contacted.

### What it measures

One run starts its own redis-server (free port, no persistence) and the servers, each in its own process
(\`dist/bench/bench-servers.js\`, forked), while autocannon runs alone in the parent process:

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
  the default \`TOKEN_CACHE_SIZE\`, and a valid access token (a session from \`SessionStore.create\` and a token from
  \`TokenService.signAccess\`, built in the gateway's process from its config, key and Redis);
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

After the rounds, the gateway (cached) and the upstream alone each run once more at a fixed rate of half the gateway's peak
(autocannon \`overallRate\`) to give the latency the gateway adds; then logins/s and refreshes/s through the full chain.

Both gateways share one signing key and one Redis, so the same token works for both. Each round runs the targets in this order,
each with a warm-up and then a measured run; the table shows, per target, the round with the median requests/s (its p50 and p99 with it)
and the spread of all rounds. Any connection error, timeout or non-2xx answer invalidates the run (exit code 1).
CPU per request is the target process's own CPU time (\`process.cpuUsage()\`, user + system) during the measured run, and
redis-server's (INFO cpu), divided by the requests completed: on a shared machine it is steadier than requests/s.
Redis commands per request are INFO commandstats (all commands but INFO) before and after each measured gateway run, divided by the
requests that run completed; round trips per request come from a MONITOR audit of ${AUDIT_REQUESTS} sequential requests per gateway,
which tells the commands a client sent from those a Lua script ran.

### Machine

${Object.entries(info).map(([k, v]) => `- ${k}: ${v}`).join('\n')}

### Results

${ROUNDS} rounds, ${DURATION} s per measured run after ${WARMUP} s of warm-up, ${CONNECTIONS} connections, \`GET /api/orders\`
(command: \`${process.env.BENCH_COMMAND ?? 'make bench'}\`).

${table(report)}

Redis per proxied request:

${redisSection(report)}

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

  // One connection: the latency a lone client sees, bare proxy and gateway (cache on and off), interleaved.
  const single = new Map<TargetId, Run[]>()
  for (let round = 1; round <= ROUNDS; round++) {
    for (const target of targets.filter((t) => ['bare', 'cached', 'sessionOff'].includes(t.id))) {
      if (WARMUP > 0) await load(target, WARMUP, undefined, 1)
      const before = await cpuReading(target)
      const result = await load(target, DURATION, undefined, 1)
      const after = await cpuReading(target)
      const run = runOf(result, before, after)
      single.set(target.id, [...(single.get(target.id) ?? []), run])
      console.log(`1 connection, round ${round}  ${target.label.padEnd(28)} ${fmt(run.rps).padStart(8)} req/s  p50 ${run.p50} ms  p99 ` +
        `${run.p99} ms, GC ${(run.gcMsPer1000 ?? 0).toFixed(1)} ms/1000 req, ${(run.allocKbPerRequest ?? 0).toFixed(1)} KB/req`)
    }
  }
  for (const [id, list] of single) {
    const m = median(list)
    console.log(`1 connection, median round: ${id.padEnd(11)} ${fmt(m.rps)} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms (p99 of all rounds: ` +
      `${list.map((r) => r.p99).join(', ')})`)
  }
  for (const id of ['bare', 'cached', 'sessionOff'] as const) {
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

  const report: Report = { targets, runs, audits, latency, auth: authFigures }
  const info = machine(redisVersion, loadBefore)
  const bareRps = median(runs.get('bare')!).rps
  console.log('\n' + table(report) + '\n')
  console.log(`ratio gateway (cached) / bare proxy:   ${(median(runs.get('cached')!).rps / bareRps).toFixed(2)}`)
  console.log(`ratio gateway (uncached) / bare proxy: ${(median(runs.get('uncached')!).rps / bareRps).toFixed(2)}`)
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
