/**
 * `make soak`: the gateway under steady load with many distinct users and tokens, its memory
 * sampled over time. Fails (exit 1) when the gateway's RSS goes over SOAK_MAX_RSS_MB or grows after
 * the warm-up faster than SOAK_MAX_SLOPE_MB_PER_MIN (least-squares slope of the samples): every
 * cache must be bounded, so memory must come to a plateau.
 *
 * The gateway is started as operators start it: bin/auth-gateway (the image's CMD, `npm start`,
 * `make run`), so with the same Node/V8 flags and NODE_OPTIONS defaults, configured by environment
 * (a private JWKS file, NODE_ENV=production, default limits and cache sizes). A NODE_OPTIONS set
 * for `make soak` reaches it as it would in production. Around it, all on 127.0.0.1: a private
 * redis-server and the real orders stub (forked from dist/bench/bench-servers.js).
 *
 * SOAK_TOKENS access tokens of SOAK_USERS users are made here, with the gateway's own session store
 * and token service on the same Redis and key: more tokens than the verified-token cache holds, so
 * that the caches churn. autocannon in this process rotates the tokens request by request.
 *
 * Every sample is a scrape of the gateway's /metrics: RSS, V8 heap used and committed, and the live
 * heap (heap in use after the last full GC, `gateway_nodejs_heap_after_gc_bytes`).
 *
 * Environment: SOAK_SECONDS (600), SOAK_WARMUP_SECONDS (a fifth of the run, at least 20),
 * SOAK_SAMPLE_SECONDS (10), SOAK_CONNECTIONS (20), SOAK_TOKENS (20000), SOAK_USERS (5000),
 * SOAK_MAX_RSS_MB (150), SOAK_MAX_SLOPE_MB_PER_MIN (1).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { loadConfig } from '../src/config.js'
import { LIMIT_WINDOW_MS } from '../src/limits/limit-headers.js'
import { createRedisClient } from '../src/plugins/app/redis-store.js'
import { SessionStore } from '../src/sessions/session-store.js'
import { KeyRing, generatePrivateJwk } from '../src/tokens/key-ring.js'
import { TokenService, newId } from '../src/tokens/token-service.js'
import type { ChildMessage, ParentMessage, ServerSpec } from './bench-servers.js'
import { killAndWait, spawnTracked } from '../dev-tools/child-processes.js'
import { freePort, startRedis, waitFor } from '../dev-tools/redis-server.js'
import { envInt } from '../dev-tools/env-int.js'

const SECONDS = envInt('SOAK_SECONDS', 600, 10)
const WARMUP = envInt('SOAK_WARMUP_SECONDS', Math.max(20, Math.round(SECONDS / 5)), 0)
const SAMPLE = envInt('SOAK_SAMPLE_SECONDS', 10, 1)
const CONNECTIONS = envInt('SOAK_CONNECTIONS', 20, 1)
const TOKENS = envInt('SOAK_TOKENS', 20_000, 1)
const USERS = envInt('SOAK_USERS', 5000, 1)
const MAX_RSS_MB = envInt('SOAK_MAX_RSS_MB', 150, 1)
const MAX_SLOPE = Number(process.env.SOAK_MAX_SLOPE_MB_PER_MIN ?? '1')
if (!(MAX_SLOPE > 0)) throw new Error('SOAK_MAX_SLOPE_MB_PER_MIN must be a positive number')

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** The product's start command (see the file): the soak measures exactly what operators run. */
const LAUNCHER = join(ROOT, 'bin', 'auth-gateway')
const serversScript = fileURLToPath(new URL('./bench-servers.js', import.meta.url))
const children: ChildProcess[] = []
process.once('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL') })

function ask<T extends ChildMessage['type']> (child: ChildProcess, message: ParentMessage | null,
  type: T): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: ChildMessage): void => {
      if (m.type === 'error') { cleanup(); reject(new Error(m.message)) } else if (m.type === type) { cleanup();
        resolve(m as Extract<ChildMessage, { type: T }>) }
    }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`server exited (${String(code)}) before '${type}'`)) }
    const cleanup = (): void => { child.off('message', onMessage); child.off('exit', onExit) }
    child.on('message', onMessage)
    child.once('exit', onExit)
    if (message !== null) child.send(message)
  })
}

async function start (role: string, spec: ServerSpec): Promise<{ child: ChildProcess, url: string }> {
  const child = fork(serversScript, [role, JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  const { url } = await ask(child, null, 'ready')
  return { child, url }
}

/** Least-squares slope of (t, y) in y-units per t-unit. */
export function slope (points: Array<[number, number]>): number {
  const n = points.length
  if (n < 2) return 0
  const mx = points.reduce((a, [x]) => a + x, 0) / n
  const my = points.reduce((a, [, y]) => a + y, 0) / n
  let num = 0
  let den = 0
  for (const [x, y] of points) { num += (x - mx) * (y - my); den += (x - mx) ** 2 }
  return den === 0 ? 0 : num / den
}

/** The gateway's memory as its /metrics tells it (bytes), and the time it spent in GC so far (s). */
interface Memory { rss: number, heapUsed: number, heapTotal: number, liveHeap: number, gcSeconds: number }

export function memoryFromMetrics (text: string): Memory {
  const value = (name: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `))
    if (line === undefined) throw new Error(`/metrics has no ${name}`)
    return Number(line.slice(name.length + 1).split(' ')[0])
  }
  return {
    rss: value('gateway_process_resident_memory_bytes'),
    heapUsed: value('gateway_nodejs_heap_size_used_bytes'),
    heapTotal: value('gateway_nodejs_heap_size_total_bytes'),
    liveHeap: value('gateway_nodejs_heap_after_gc_bytes'),
    gcSeconds: text.split('\n').filter((l) => l.startsWith('gateway_nodejs_gc_duration_seconds_sum{')).reduce((sum, l) => sum
      + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
  }
}

/** CPU time (user + system) a process has used, in seconds, from /proc: steadier than req/s on a busy machine. */
function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100
}

async function memoryOf (url: string): Promise<Memory> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return memoryFromMetrics(await res.text())
}

async function main (): Promise<void> {
  const redis = await startRedis()
  const jwk = await generatePrivateJwk()
  const dir = mkdtempSync(join(tmpdir(), 'gw-soak-'))
  const keysFile = join(dir, 'jwks.json')
  writeFileSync(keysFile, JSON.stringify({ keys: [jwk] }), { mode: 0o600 })
  const orders = await start('orders', { jwk })

  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  // Production settings: default limits, cache sizes and timeouts. Only what the synthetic load
  // needs differs: the users service knows none of the soak's users, so their state (recorded with
  // each session) must be trusted for the whole run, and the tokens must outlive it.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    REDIS_URL: redis.url,
    ORDERS_URL: orders.url,
    USERS_URL: orders.url,
    JWT_KEYS_FILE: keysFile,
    USER_STATE_TTL: String(Math.max(86_400, SECONDS * 2)),
    ACCESS_TOKEN_TTL: String(Math.max(900, SECONDS + 600))
  }
  if (process.env.NODE_OPTIONS !== undefined) env.NODE_OPTIONS = process.env.NODE_OPTIONS
  const log = join(dir, 'gateway.log')
  const gateway = spawnTracked('sh', [LAUNCHER], { cwd: ROOT, env, stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')] })
  const gatewayLog = (): string => { try { return readFileSync(log, 'utf8').slice(-3_000) } catch { return '' } }
  try {
    await waitFor(async () => {
      if (gateway.exitCode !== null) throw new Error(`the gateway exited (${gateway.exitCode}):\n${gatewayLog()}`)
      try { return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) })).status === 200 } catch { return false }
    }, 'the gateway to be ready', 60_000)
  } catch (err) {
    console.error(gatewayLog())
    throw err
  }

  // Sessions in Redis and access tokens for them, as a login makes them (same store, same key).
  const config = loadConfig(env)
  const tokenService = new TokenService(await KeyRing.fromJwks([jwk], true), { ...config.jwt, cacheSize: 0 })
  const redisClient = createRedisClient(config.redis)
  await redisClient.connect()
  const sessions = new SessionStore(redisClient, {
    refreshTtl: config.jwt.refreshTtl,
    reuseGraceSeconds: config.jwt.reuseGrace,
    refreshLimit: { max: config.limits.refreshPerSession, windowMs: LIMIT_WINDOW_MS },
    userStateTtl: config.userStateTtl
  })
  const tokens: string[] = new Array<string>(TOKENS)
  let made = 0
  await Promise.all(Array.from({ length: 32 }, async () => {
    for (let i = made++; i < TOKENS; i = made++) {
      const n = i % USERS
      const identity = { userId: String(100000 + n), username: `user${n}`, roles: ['user'] }
      const sessionId = newId()
      await sessions.create({ ...identity, sessionId, refreshJti: newId(), ip: '127.0.0.1', userAgent: 'soak' })
      tokens[i] = (await tokenService.signAccess(identity, sessionId)).token
    }
  }))
  redisClient.disconnect()

  const flags = readFileSync(`/proc/${gateway.pid!}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--')).join(' ')
  const nodeOptions = (readFileSync(`/proc/${gateway.pid!}/environ`, 'utf8').split('\0').find((e) => e.startsWith('NODE_OPTIONS='))
    ?? 'NODE_OPTIONS=').slice('NODE_OPTIONS='.length)
  console.log(
    `soak: ${SECONDS} s (${WARMUP} s warm-up), ${CONNECTIONS} connections, ${TOKENS} tokens of ${USERS} users, memory every ${SAMPLE} s`)
  console.log(`gateway: ${LAUNCHER} (pid ${gateway.pid!}): node ${flags}, NODE_OPTIONS=${nodeOptions}`)
  const mb = (bytes: number): number => bytes / 2 ** 20
  const idle = await memoryOf(url)
  console.log(
    `before the load: rss ${mb(idle.rss).toFixed(1)} MB  heap used ${mb(idle.heapUsed).toFixed(1)} / ` +
      `committed ${mb(idle.heapTotal).toFixed(1)} MB  live heap ${mb(idle.liveHeap).toFixed(1)} MB`)

  const cpuAtStart = cpuSeconds(gateway.pid!)
  let next = 0
  const run = autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    timeout: 10,
    requests: [{
      method: 'GET',
      path: '/api/orders',
      setupRequest: (req) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]!}` } })
    }]
  })

  const started = Date.now()
  const samples: Array<[number, number]> = []
  const live: Array<[number, number]> = []
  const timer = setInterval(() => {
    memoryOf(url).then(({ rss, heapUsed, heapTotal, liveHeap }) => {
      const t = (Date.now() - started) / 1000
      samples.push([t, mb(rss)])
      live.push([t, mb(liveHeap)])
      console.log(
        `t=${t.toFixed(0).padStart(4)} s  rss ${mb(rss).toFixed(1)} MB  heap used ${mb(heapUsed).toFixed(1)} / ` +
          `committed ${mb(heapTotal).toFixed(1)} MB  live heap (after last full GC) ${mb(liveHeap).toFixed(1)} MB`)
    }, (err: Error) => console.error(`sample failed: ${err.message}`))
  }, SAMPLE * 1000)
  const result = await run
  clearInterval(timer)
  const cpuPerRequest = (cpuSeconds(gateway.pid!) - cpuAtStart) / result.requests.total * 1e6
  const gcPerRequest = ((await memoryOf(url)).gcSeconds - idle.gcSeconds) / result.requests.total * 1e6

  const afterWarmup = samples.filter(([t]) => t >= WARMUP)
  const perMinute = slope(afterWarmup) * 60
  const livePerMinute = slope(live.filter(([t]) => t >= WARMUP)) * 60
  const peak = Math.max(...samples.map(([, y]) => y))
  const bad = result.errors + result.timeouts + result.non2xx
  console.log(
    `\nrequests ${result.requests.total} (${result.requests.average.toFixed(0)} req/s), errors ${result.errors}, ` +
      `timeouts ${result.timeouts}, non-2xx ${result.non2xx}; gateway CPU ${cpuPerRequest.toFixed(0)} µs per request, of which GC ` +
        `pauses ${gcPerRequest.toFixed(0)} µs`)
  console.log(
    `peak RSS ${peak.toFixed(1)} MB (limit ${MAX_RSS_MB}); slope after warm-up ${perMinute.toFixed(2)} MB/min ` +
      `over ${afterWarmup.length} samples (limit ${MAX_SLOPE}); live heap slope ${livePerMinute.toFixed(2)} MB/min`)

  await killAndWait(gateway)
  orders.child.send({ type: 'stop' } satisfies ParentMessage)
  await redis.stop()
  rmSync(dir, { recursive: true, force: true })
  const failures: string[] = []
  if (afterWarmup.length < 3) failures.push('too few samples after the warm-up (raise SOAK_SECONDS)')
  if (peak > MAX_RSS_MB) failures.push(`RSS ${peak.toFixed(1)} MB over ${MAX_RSS_MB} MB`)
  if (perMinute > MAX_SLOPE) failures.push(`RSS grows ${perMinute.toFixed(2)} MB/min after the warm-up (limit ${MAX_SLOPE})`)
  if (bad > 0) failures.push(`${bad} failed requests`)
  console.log(failures.length === 0 ? 'soak: PASS' : `soak: FAIL: ${failures.join('; ')}`)
  process.exit(failures.length === 0 ? 0 : 1)
}

main().catch((err: Error) => {
  console.error(err)
  process.exit(1)
})
