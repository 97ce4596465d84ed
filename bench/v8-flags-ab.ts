/**
 * `make bench-v8-flags`: the gateway's latency, CPU and garbage under different Node/V8 flags,
 * against the bare @fastify/http-proxy. Gateways in their own processes, identical but for their
 * flags, behind the bench's node:http upstream, one Redis and one signing key (one token works for
 * all); each round runs every target under wrk at each connection count (`wrk -t1 -cN`), so that
 * drift of a shared machine hits all alike. It prints every run and the medians; it writes nothing.
 *
 * Variants (BENCH_V8_VARIANTS, `name=flags;name=flags`): by default the flags the gateway ships
 * with (bin/node-flags.sh), the young generation it had before (`--max-semi-space-size=4`), and
 * Node's defaults (none of the shipped flags). A variant's flags come after the shipped ones (the
 * last of a repeated V8 flag wins); the variant named `node-defaults` gets no shipped flags.
 *
 * Environment: BENCH_AB_ROUNDS (5), BENCH_DURATION (s, 5), BENCH_WARMUP (s, 2),
 * BENCH_AB_CONNECTIONS (`1,8`). Needs wrk (Debian package wrk). Only 127.0.0.1 is contacted.
 */
import type { ChildProcess } from 'node:child_process'
import { availableParallelism, loadavg } from 'node:os'
import { generatePrivateJwk } from '../src/tokens/key-ring.js'
import type { ParentMessage } from './bench-servers.js'
import { cpuReading, nextMessage, perRequestOf, startServer, stopServer } from './bench-children.js'
import { fmt, median } from './bench-figures.js'
import { gatewayNodeFlags } from './gateway-node-flags.js'
import { hasWrk, wrkRun } from './latency-client.js'
import { startRedis } from '../dev-tools/redis-server.js'
import { envInt } from '../dev-tools/env-int.js'

const ORDERS_PATH = '/api/orders'
const ROUNDS = envInt('BENCH_AB_ROUNDS', 5, 1)
const DURATION = envInt('BENCH_DURATION', 5, 1)
const WARMUP = envInt('BENCH_WARMUP', 2, 0)
const CONNECTIONS = (process.env.BENCH_AB_CONNECTIONS ?? '1,8').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0)
const DEFAULT_VARIANTS = 'shipped=;semi-space-4=--max-semi-space-size=4;node-defaults='

interface Target { name: string, child: ChildProcess, url: string, headers: Record<string, string> }
interface Run { p50: number, p90: number, p99: number, rps: number, cpu: number, gcMs: number, allocKb: number }
async function measure (target: Target, connections: number): Promise<Run> {
  const url = target.url + ORDERS_PATH
  if (WARMUP > 0) await wrkRun(url, target.headers, connections, WARMUP)
  const before = await cpuReading(target.child, target.name)
  const result = await wrkRun(url, target.headers, connections, DURATION)
  const after = await cpuReading(target.child, target.name)
  if (result.non2xx > 0 || result.socketErrors > 0 || result.requests === 0) {
    throw new Error(`${target.name}, ${connections} connection(s): ${result.non2xx} non-2xx, ${result.socketErrors} socket errors`)
  }
  const { cpuPerRequest, gcMsPer1000, allocKbPerRequest } = perRequestOf(before, after, result.requests)
  return { p50: result.p50, p90: result.p90, p99: result.p99, rps: result.rps, cpu: cpuPerRequest, gcMs: gcMsPer1000,
    allocKb: allocKbPerRequest }
}


/** BENCH_V8_VARIANTS: `name=flags` pairs separated by `;` (the flags may be empty). */
function variants (): Array<{ name: string, flags: string[] }> {
  return (process.env.BENCH_V8_VARIANTS ?? DEFAULT_VARIANTS).split(';').filter((v) => v.trim() !== '').map((v) => {
    const at = v.indexOf('=')
    const name = (at < 0 ? v : v.slice(0, at)).trim()
    const flags = at < 0 ? '' : v.slice(at + 1)
    return { name, flags: flags.split(/\s+/).filter((f) => f !== '') }
  })
}

async function main (): Promise<void> {
  if (!await hasWrk()) throw new Error('wrk is not installed (Debian package wrk; `make bench` installs it)')
  if (loadavg()[0]! > availableParallelism() / 2) console.warn(`warning: the machine is busy (load average ${loadavg()[0]!.toFixed(2)})`)
  console.log(`shipped flags (bin/node-flags.sh): ${gatewayNodeFlags().join(' ')}`)
  const redis = await startRedis()
  const jwk = await generatePrivateJwk()
  const upstream = await startServer('upstream', 'upstream')
  const bare = await startServer('bare proxy', 'bare', { upstreamUrl: upstream.url })
  const gateways: Target[] = []
  for (const variant of variants()) {
    const server = await startServer(variant.name, 'gateway', { upstreamUrl: upstream.url, redisUrl: redis.url, jwk }, variant.flags,
      variant.name !== 'node-defaults')
    gateways.push({ ...server, headers: {} })
  }
  const tokenReply = nextMessage(gateways[0]!.child, gateways[0]!.name, 'token')
  gateways[0]!.child.send({ type: 'token' } satisfies ParentMessage)
  const { token } = await tokenReply as { token: string }
  for (const gateway of gateways) gateway.headers = { authorization: `Bearer ${token}` }
  const targets: Target[] = [{ ...bare, name: 'bare @fastify/http-proxy', headers: {} }, ...gateways]

  const runs = new Map<string, Run[]>()
  for (let round = 1; round <= ROUNDS; round++) {
    for (const connections of CONNECTIONS) {
      for (const target of targets) {
        const run = await measure(target, connections)
        const key = `${target.name}@${connections}`
        runs.set(key, [...(runs.get(key) ?? []), run])
        console.log(`round ${round}, ${connections} conn.  ${target.name.padEnd(26)} p50 ${fmt(run.p50).padStart(6)} µs  ` +
          `p99 ${fmt(run.p99).padStart(6)} µs  ${fmt(run.rps).padStart(7)} req/s  CPU ${fmt(run.cpu)} µs/req  ` +
          `GC ${fmt(run.gcMs, 2)} ms/1000 req  ${fmt(run.allocKb, 1)} KB/req`)
      }
    }
  }

  console.log(`\nMedians of ${ROUNDS} rounds (${DURATION} s each, wrk -t1):\n`)
  console.log('| target | connections | p50 µs | p99 µs | p99 / bare | p99 all rounds | req/s | CPU µs / request | ' +
    'GC ms / 1,000 requests | KB / request |')
  console.log('|---|---:|---:|---:|---:|---|---:|---:|---:|---:|')
  for (const connections of CONNECTIONS) {
    const bareP99 = median(runs.get(`${targets[0]!.name}@${connections}`)!.map((r) => r.p99))
    for (const target of targets) {
      const list = runs.get(`${target.name}@${connections}`)!
      const m = (f: (r: Run) => number): number => median(list.map(f))
      console.log(`| ${target.name} | ${connections} | ${fmt(m((r) => r.p50))} | ${fmt(m((r) => r.p99))} | ` +
        `${fmt(m((r) => r.p99) / bareP99, 2)} | ${list.map((r) => fmt(r.p99)).join(', ')} | ${fmt(m((r) => r.rps))} | ` +
        `${fmt(m((r) => r.cpu))} | ${fmt(m((r) => r.gcMs), 2)} | ${fmt(m((r) => r.allocKb), 1)} |`)
    }
  }
  for (const target of targets) await stopServer(target.child)
  await stopServer(upstream.child)
  await redis.stop()
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err)
  process.exit(1)
})
