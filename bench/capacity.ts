/**
 * `make capacity`: the figures of docs/capacity.md, measured, and the model checked against runs
 * with 1, 2 and 3 gateway replicas sharing one Redis, as a fleet behind a load balancer would.
 *
 * Per configuration (interleaved, CAPACITY_ROUNDS rounds): every replica is loaded at once by its
 * own autocannon instance (BENCH_CONNECTIONS connections each) on GET /api/orders with a valid
 * token, and the run records requests/s (total and per replica), each replica's CPU per request,
 * redis-server's CPU per request and its commands per request (INFO cpu / commandstats), and the
 * CPU of the upstream and of the load generator, so that the machine's whole CPU budget per
 * request is known. Then, once: Redis round trips per request (MONITOR, sequential requests),
 * Redis memory per session (used_memory over CAPACITY_SESSIONS new sessions) and gateway heap per
 * cached token (heap after gc, before and after CAPACITY_TOKENS distinct tokens were verified).
 *
 * Environment: CAPACITY_REPLICAS (1,2,3), CAPACITY_ROUNDS (3), BENCH_DURATION (s, 5),
 * BENCH_WARMUP (s, 2), BENCH_CONNECTIONS (per replica, 32), CAPACITY_SESSIONS (10000),
 * CAPACITY_TOKENS (5000), CAPACITY_SESSION_CACHE (off: a session check in Redis per request, the
 * model's case; on: the per-replica session cache of a single Redis). Prints a Markdown report;
 * writes nothing. Any non-2xx answer or connection error invalidates the run (exit 1). Only
 * 127.0.0.1 is contacted.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { availableParallelism, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import autocannon, { type Result } from 'autocannon'
import { Redis } from 'ioredis'
import { generatePrivateJwk } from '../src/tokens/key-ring.js'
import type { ChildMessage, ParentMessage, ServerSpec } from './bench-servers.js'
import { startRedis } from '../dev-tools/redis-server.js'
import { envInt } from '../dev-tools/env-int.js'
import { fmt, lowerMedian } from './bench-figures.js'

const ORDERS_PATH = '/api/orders'
const REPLICAS = (process.env.CAPACITY_REPLICAS ?? '1,2,3').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0)
const ROUNDS = envInt('CAPACITY_ROUNDS', 3, 1)
const DURATION = envInt('BENCH_DURATION', 5, 1)
const WARMUP = envInt('BENCH_WARMUP', 2, 0)
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 32, 1)
const SESSIONS = envInt('CAPACITY_SESSIONS', 10_000, 100)
const TOKENS = envInt('CAPACITY_TOKENS', 5_000, 100)
const AUDIT_REQUESTS = 100
const SESSION_CACHE = process.env.CAPACITY_SESSION_CACHE === 'on' ? 'on' : 'off'

const children: ChildProcess[] = []
const serversScript = fileURLToPath(new URL('./bench-servers.js', import.meta.url))
process.once('exit', () => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL') })

function invalid (message: string): never {
  console.error(`\nINVALID RUN: ${message}`)
  process.exit(1)
}

function nextMessage<T extends ChildMessage['type']> (child: ChildProcess, name: string,
  type: T): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ChildMessage): void => {
      if (message.type === 'error') { cleanup(); reject(new Error(`${name}: ${message.message}`)); return }
      if (message.type === type) { cleanup(); resolve(message as Extract<ChildMessage, { type: T }>) }
    }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`${name} exited (${String(code)}) before '${type}'`)) }
    const cleanup = (): void => { child.off('message', onMessage); child.off('exit', onExit) }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

async function ask<T extends ChildMessage['type']> (child: ChildProcess, message: ParentMessage,
  type: T): Promise<Extract<ChildMessage, { type: T }>> {
  const reply = nextMessage(child, String(child.pid), type)
  child.send(message)
  return await reply
}

async function startServer (role: 'upstream' | 'gateway', spec: ServerSpec = {}): Promise<{ child: ChildProcess, url: string }> {
  const child = fork(serversScript, [role, JSON.stringify(spec)],
    { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  const ready = await nextMessage(child, role, 'ready')
  return { child, url: ready.url }
}

async function commandCalls (redis: Redis): Promise<number> {
  const text = await redis.info('commandstats')
  let calls = 0
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (match[1] !== 'info') calls += Number(match[2])
  return calls
}

async function redisCpuMicros (redis: Redis): Promise<number> {
  const text = await redis.info('cpu')
  let total = 0
  for (const match of text.matchAll(/^used_cpu_(?:sys|user)(?:_children)?:([\d.]+)/gm)) total += Number(match[1])
  return total * 1e6
}

async function usedMemory (redis: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1] ?? NaN)
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const cpuOf = async (child: ChildProcess): Promise<number> => (await ask(child, { type: 'cpu' }, 'cpu')).micros

function loadAll (urls: string[], token: string, duration: number): Promise<Result[]> {
  return Promise.all(urls.map((url) => autocannon(
    { url: url + ORDERS_PATH, connections: CONNECTIONS, duration, headers: { authorization: `Bearer ${token}` }, timeout: 10 })))
}

interface Run {
  replicas: number
  rps: number
  perReplica: number[]
  gatewayCpu: number
  redisCpu: number
  upstreamCpu: number
  loadCpu: number
  commands: number
  p99: number
}

async function run (gateways: Array<{ child: ChildProcess, url: string }>, upstream: ChildProcess, redis: Redis,
  token: string): Promise<Run> {
  const urls = gateways.map((g) => g.url)
  if (WARMUP > 0) await loadAll(urls, token, WARMUP)
  await sleep(200)
  const before = { cmds: await commandCalls(redis), redis: await redisCpuMicros(redis), up: await cpuOf(upstream),
    gw: await Promise.all(gateways.map((g) => cpuOf(g.child))), load: process.cpuUsage() }
  const results = await loadAll(urls, token, DURATION)
  const load = process.cpuUsage(before.load)
  const gw = await Promise.all(gateways.map((g) => cpuOf(g.child)))
  const up = await cpuOf(upstream)
  const redisCpu = await redisCpuMicros(redis) - before.redis
  await sleep(200)
  const cmds = await commandCalls(redis) - before.cmds
  for (const r of results) {
    if (r.errors + r.timeouts + r.non2xx > 0 || r["2xx"] === 0) invalid(
      `${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx (status codes ${JSON.stringify(r.statusCodeStats)})`)
  }
  const completed = results.reduce((a, r) => a + r.requests.total, 0)
  return {
    replicas: gateways.length,
    rps: completed / DURATION,
    perReplica: results.map((r) => r.requests.total / DURATION),
    gatewayCpu: gw.reduce((a, v, i) => a + v - before.gw[i]!, 0) / completed,
    redisCpu: redisCpu / completed,
    upstreamCpu: (up - before.up) / completed,
    loadCpu: (load.user + load.system) / completed,
    commands: cmds / completed,
    p99: Math.max(...results.map((r) => r.latency.p99))
  }
}

/** Round trips per request: MONITOR marks the commands a script ran as `lua`; the others were sent. */
async function roundTrips (url: string, redisUrl: string, token: string): Promise<{ sent: number, inScripts: number }> {
  const client = new Redis(redisUrl, { lazyConnect: true })
  await client.connect()
  const monitor = await client.monitor()
  let sent = 0
  let inScripts = 0
  monitor.on('monitor', (_time: string, _args: string[], source: string) => { if (source === 'lua') inScripts++; else sent++ })
  await sleep(100)
  for (let i = 0; i < AUDIT_REQUESTS; i++) {
    const res = await fetch(url + ORDERS_PATH, { headers: { authorization: `Bearer ${token}` } })
    await res.arrayBuffer()
    if (res.status !== 200) invalid(`round-trip audit: status ${res.status}`)
  }
  await sleep(200)
  monitor.disconnect()
  client.disconnect()
  return { sent: sent / AUDIT_REQUESTS, inScripts: inScripts / AUDIT_REQUESTS }
}

const spread = (values: number[], digits = 0): string => `${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)}`

async function main (): Promise<void> {
  const loadBefore = loadavg()[0]!
  const redisServer = await startRedis()
  const redis = new Redis(redisServer.url)
  const upstream = await startServer('upstream')
  const jwk = await generatePrivateJwk()
  // On a machine busy with other work, an event loop can stall past the 500 ms default and a
  // request ends in 503 store_unavailable, which invalidates the run: the tests' 3 s instead.
  // The model's Redis figures are a session check in Redis per request, as on a Redis Cluster (no
  // per-replica session cache there, docs/session-cache.md): SESSION_CACHE=off unless
  // CAPACITY_SESSION_CACHE=on.
  const spec: ServerSpec = { upstreamUrl: upstream.url, redisUrl: redisServer.url, jwk,
    env: { REDIS_COMMAND_TIMEOUT_MS: '3000', SESSION_CACHE } }
  const gateways = []
  for (let i = 0; i < Math.max(...REPLICAS); i++) gateways.push(await startServer('gateway', spec))
  const token = (await ask(gateways[0]!.child, { type: 'token' }, 'token')).token

  const runs: Run[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    for (const n of REPLICAS) {
      const r = await run(gateways.slice(0, n), upstream.child, redis, token)
      runs.push(r)
      console.error(
        `round ${round}, ${n} replica(s): ${fmt(r.rps)} req/s (${r.perReplica.map((v) => fmt(v)).join(' + ')}), ` +
          `gateway ${fmt(r.gatewayCpu)} µs/req, redis ${fmt(r.redisCpu, 1)} µs/req, ${fmt(r.commands, 2)} commands/req`)
    }
  }
  const trips = await roundTrips(gateways[0]!.url, redisServer.url, token)

  // Memory: Redis per session, gateway heap per cached token.
  const memBefore = await usedMemory(redis)
  const tokens = (await ask(gateways[0]!.child, { type: 'tokens', count: SESSIONS, users: Math.max(1, Math.floor(SESSIONS / 2)) },
    'tokens')).tokens
  const perSession = (await usedMemory(redis) - memBefore) / SESSIONS
  const gateway = gateways[gateways.length - 1]!
  const heapBefore = (await ask(gateway.child, { type: 'memory', gc: true }, 'memory')).heapUsed
  const distinct = tokens.slice(0, TOKENS)
  for (let i = 0; i < distinct.length; i += 50) {
    await Promise.all(distinct.slice(i, i + 50).map(async (t) => {
      const res = await fetch(gateway.url + ORDERS_PATH, { headers: { authorization: `Bearer ${t}` } })
      await res.arrayBuffer()
      if (res.status !== 200) invalid(`cached-token memory: status ${res.status}`)
    }))
  }
  const heapAfter = (await ask(gateway.child, { type: 'memory', gc: true }, 'memory')).heapUsed
  const perToken = (heapAfter - heapBefore) / distinct.length

  for (const g of gateways) g.child.send({ type: 'stop' } satisfies ParentMessage)
  upstream.child.send({ type: 'stop' } satisfies ParentMessage)
  redis.disconnect()
  await redisServer.stop()

  const lines: string[] = []
  lines.push(
    `${ROUNDS} rounds, ${DURATION} s per run after ${WARMUP} s of warm-up, ${CONNECTIONS} connections per replica, GET /api/orders, ` +
    `SESSION_CACHE=${SESSION_CACHE}, ` +
    `${availableParallelism()} cores shared with the load generator and the upstream; load average before ${loadBefore.toFixed(2)}, ` +
      `after ${loadavg()[0]!.toFixed(2)}.`)
  lines.push('')
  lines.push(
    '| replicas | req/s total (median) | req/s total (all rounds) | req/s per replica (median) | gateway CPU µs/req | Redis CPU µs/req ' +
      '| Redis commands/req | upstream CPU µs/req | load generator CPU µs/req | whole machine CPU µs/req | p99 ms (worst replica) |')
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const n of REPLICAS) {
    const mine = runs.filter((r) => r.replicas === n)
    const m = (f: (r: Run) => number): number => lowerMedian(mine.map(f))
    const all = (r: Run): number => r.gatewayCpu + r.redisCpu + r.upstreamCpu + r.loadCpu
    lines.push(
      `| ${n} | ${fmt(m((r) => r.rps))} | ${spread(mine.map((r) => r.rps))} | ${fmt(m((r) => r.rps / n))} ` +
        `| ${fmt(m((r) => r.gatewayCpu))} (${spread(mine.map((r) => r.gatewayCpu))}) | ${fmt(m((r) => r.redisCpu), 1)} ` +
          `(${spread(mine.map((r) => r.redisCpu), 1)}) | ${fmt(m((r) => r.commands), 2)} | ${fmt(m((r) => r.upstreamCpu))} ` +
            `| ${fmt(m((r) => r.loadCpu))} | ${fmt(m(all))} | ${fmt(m((r) => r.p99))} |`)
  }
  lines.push('')
  lines.push(
    `Redis round trips per request (MONITOR, ${AUDIT_REQUESTS} sequential requests): ${fmt(trips.sent, 2)} sent by the ` +
      `gateway, ${fmt(trips.inScripts, 2)} commands run inside scripts.`)
  lines.push(
    `Redis memory per session (used_memory over ${fmt(SESSIONS)} new sessions of ${fmt(Math.floor(SESSIONS / 2))} ` +
      `users): ${fmt(perSession)} bytes.`)
  lines.push(
    `Gateway heap per cached token (heap after gc, before and after ${fmt(distinct.length)} distinct tokens were ` +
      `verified): ${fmt(perToken)} bytes.`)
  console.log(lines.join('\n'))
  process.exit(0)
}

main().catch((err: Error) => invalid(err.stack ?? err.message))
