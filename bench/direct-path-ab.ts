/**
 * `make bench-direct`: is the direct GET path (src/proxy/direct-forward.ts) worth keeping? Two
 * gateways in their own processes, identical but for PROXY_DIRECT_GET (true: GETs take the direct
 * path; false: every request goes through @fastify/reply-from), behind the bench's node:http
 * upstream, one Redis and one signing key (one token works for both). Each round measures both,
 * the order alternating from round to round, so that drift of a shared machine hits both alike;
 * the figure that counts is each round's pair: CPU µs per request of the gateway's process, and
 * requests/s.
 *
 * Environment: BENCH_AB_ROUNDS (12), BENCH_DURATION (s, 4), BENCH_WARMUP (s, 1),
 * BENCH_CONNECTIONS (50). Only 127.0.0.1 is contacted. It prints a table and writes nothing.
 */
import type { ChildProcess } from 'node:child_process'
import { availableParallelism, loadavg } from 'node:os'
import autocannon, { type Result } from 'autocannon'
import { generatePrivateJwk } from '../src/tokens/key-ring.js'
import type { ParentMessage, ServerSpec } from './bench-servers.js'
import { cpuReading, nextMessage, startServer as startChild, type ServerRole } from './bench-children.js'
import { fmt, median } from './bench-figures.js'
import { startRedis } from '../dev-tools/redis-server.js'
import { envInt } from '../dev-tools/env-int.js'

const ORDERS_PATH = '/api/orders'
const ROUNDS = envInt('BENCH_AB_ROUNDS', 12, 2)
const DURATION = envInt('BENCH_DURATION', 4, 1)
const WARMUP = envInt('BENCH_WARMUP', 1, 0)
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 50, 1)

const startServer = (name: string, role: ServerRole, spec: ServerSpec = {}): ReturnType<typeof startChild> => startChild(name, role, spec)

async function cpuMicros (child: ChildProcess, name: string): Promise<number> {
  return (await cpuReading(child, name)).micros
}

interface Run { rps: number, cpu: number }

async function measure (target: { name: string, child: ChildProcess, url: string }, headers: Record<string, string>): Promise<Run> {
  const load = async (duration: number): Promise<Result> => {
    const result = await autocannon({ url: target.url + ORDERS_PATH, connections: CONNECTIONS, duration, headers, timeout: 10 })
    if (result.errors + result.timeouts + result.non2xx > 0 || result['2xx'] === 0) {
      throw new Error(`${target.name}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`)
    }
    return result
  }
  if (WARMUP > 0) await load(WARMUP)
  const before = await cpuMicros(target.child, target.name)
  const result = await load(DURATION)
  const cpu = await cpuMicros(target.child, target.name) - before
  return { rps: result.requests.average, cpu: cpu / result.requests.total }
}


async function main (): Promise<void> {
  const loadBefore = loadavg()[0]!
  const redis = await startRedis()
  try {
    const jwk = await generatePrivateJwk()
    const upstream = await startServer('upstream', 'upstream')
    const spec: ServerSpec = { upstreamUrl: upstream.url, redisUrl: redis.url, jwk }
    const direct = await startServer('direct path', 'gateway', { ...spec, env: { PROXY_DIRECT_GET: 'true' } })
    const replyFrom = await startServer('reply-from only', 'gateway', { ...spec, env: { PROXY_DIRECT_GET: 'false' } })
    const tokenReply = nextMessage(direct.child, direct.name, 'token')
    direct.child.send({ type: 'token' } satisfies ParentMessage)
    const headers = { authorization: `Bearer ${(await tokenReply as { token: string }).token}` }

    console.log(`direct path A/B: ${ROUNDS} rounds, ${DURATION} s runs after ${WARMUP} s warm-up, ${CONNECTIONS} connections, ` +
      `load average ${loadBefore.toFixed(1)} on ${availableParallelism()} cores`)
    console.log('| round | first | direct CPU µs/req | reply-from CPU µs/req | ' +
      'direct ÷ reply-from (CPU) | direct req/s | reply-from req/s |')
    console.log('|---:|---|---:|---:|---:|---:|---:|')
    const pairs: Array<{ direct: Run, replyFrom: Run }> = []
    for (let round = 1; round <= ROUNDS; round++) {
      const directFirst = round % 2 === 1
      const first = await measure(directFirst ? direct : replyFrom, headers)
      const second = await measure(directFirst ? replyFrom : direct, headers)
      const pair = directFirst ? { direct: first, replyFrom: second } : { direct: second, replyFrom: first }
      pairs.push(pair)
      console.log(`| ${round} | ${directFirst ? 'direct' : 'reply-from'} | ${fmt(pair.direct.cpu)} | ${fmt(pair.replyFrom.cpu)} | ` +
        `${(pair.direct.cpu / pair.replyFrom.cpu).toFixed(2)} | ${fmt(pair.direct.rps)} | ${fmt(pair.replyFrom.rps)} |`)
    }
    const ratios = pairs.map((p) => p.direct.cpu / p.replyFrom.cpu)
    const rpsRatios = pairs.map((p) => p.direct.rps / p.replyFrom.rps)
    const spread = (xs: number[], digits = 0): string => `${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}`
    console.log('')
    console.log(`CPU µs/req, median (min–max): direct ${fmt(median(pairs.map((p) => p.direct.cpu)))} ` +
      `(${spread(pairs.map((p) => p.direct.cpu))}), ` +
      `reply-from ${fmt(median(pairs.map((p) => p.replyFrom.cpu)))} (${spread(pairs.map((p) => p.replyFrom.cpu))})`)
    console.log(`direct ÷ reply-from per round, CPU: median ${median(ratios).toFixed(2)} (${spread(ratios, 2)}); ` +
      `direct cheaper in ${ratios.filter((r) => r < 1).length} of ${ROUNDS} rounds`)
    console.log(`direct ÷ reply-from per round, req/s: median ${median(rpsRatios).toFixed(2)} (${spread(rpsRatios, 2)}); ` +
      `direct faster in ${rpsRatios.filter((r) => r > 1).length} of ${ROUNDS} rounds`)
    console.log(`load average (1 min) before / after: ${loadBefore.toFixed(1)} / ${loadavg()[0]!.toFixed(1)}`)
    for (const c of [direct, replyFrom, upstream]) c.child.send({ type: 'stop' } satisfies ParentMessage)
  } finally {
    await redis.stop()
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err)
  process.exit(1)
})
