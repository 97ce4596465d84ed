/**
 * `make soak`: the gateway under steady load with many distinct users and tokens, RSS sampled over
 * time. Fails (exit 1) when the gateway's RSS goes over SOAK_MAX_RSS_MB or grows after the warm-up
 * faster than SOAK_MAX_SLOPE_MB_PER_MIN (least-squares slope of the samples): every cache must be
 * bounded, so memory must come to a plateau.
 *
 * Runs, all on 127.0.0.1: a private redis-server, the real orders stub, and the gateway in front of
 * it (each server in its own process, forked from dist/bench/bench-servers.js), with SOAK_TOKENS
 * access tokens of SOAK_USERS users, more tokens than the verified-token cache holds, so that the
 * caches churn. autocannon in this process rotates the tokens request by request.
 *
 * Environment: SOAK_SECONDS (600), SOAK_WARMUP_SECONDS (a fifth of the run, at least 20),
 * SOAK_SAMPLE_SECONDS (10), SOAK_CONNECTIONS (20), SOAK_TOKENS (20000), SOAK_USERS (5000),
 * SOAK_MAX_RSS_MB (150), SOAK_MAX_SLOPE_MB_PER_MIN (1).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { generatePrivateJwk } from '../src/tokens/key-ring.js'
import type { ChildMessage, ParentMessage, ServerSpec } from './bench-servers.js'
import { startRedis } from '../dev-tools/redis-server.js'
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

const serversScript = fileURLToPath(new URL('./bench-servers.js', import.meta.url))
const children: ChildProcess[] = []
process.once('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL') })

function ask<T extends ChildMessage['type']> (child: ChildProcess, message: ParentMessage | null, type: T): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: ChildMessage): void => {
      if (m.type === 'error') { cleanup(); reject(new Error(m.message)) } else if (m.type === type) { cleanup(); resolve(m as Extract<ChildMessage, { type: T }>) }
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

async function main (): Promise<void> {
  const redis = await startRedis()
  const jwk = await generatePrivateJwk()
  const orders = await start('orders', { jwk })
  const gateway = await start('gateway', { jwk, redisUrl: redis.url, upstreamUrl: orders.url })
  console.log(`soak: ${SECONDS} s (${WARMUP} s warm-up), ${CONNECTIONS} connections, ${TOKENS} tokens of ${USERS} users, RSS every ${SAMPLE} s`)
  const { tokens } = await ask(gateway.child, { type: 'tokens', count: TOKENS, users: USERS }, 'tokens')

  let next = 0
  const run = autocannon({
    url: gateway.url,
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
  const mb = (bytes: number): number => bytes / 2 ** 20
  const timer = setInterval(() => {
    ask(gateway.child, { type: 'memory' }, 'memory').then(({ rss, heapUsed }) => {
      const t = (Date.now() - started) / 1000
      samples.push([t, mb(rss)])
      console.log(`t=${t.toFixed(0).padStart(4)} s  rss ${mb(rss).toFixed(1)} MB  heap ${mb(heapUsed).toFixed(1)} MB`)
    }, (err: Error) => console.error(err.message))
  }, SAMPLE * 1000)
  const result = await run
  clearInterval(timer)

  const afterWarmup = samples.filter(([t]) => t >= WARMUP)
  const perMinute = slope(afterWarmup) * 60
  const peak = Math.max(...samples.map(([, y]) => y))
  const bad = result.errors + result.timeouts + result.non2xx
  console.log(`\nrequests ${result.requests.total} (${result.requests.average.toFixed(0)} req/s), errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}`)
  console.log(`peak RSS ${peak.toFixed(1)} MB (limit ${MAX_RSS_MB}); slope after warm-up ${perMinute.toFixed(2)} MB/min over ${afterWarmup.length} samples (limit ${MAX_SLOPE})`)

  for (const c of [gateway.child, orders.child]) c.send({ type: 'stop' } satisfies ParentMessage)
  await redis.stop()
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
