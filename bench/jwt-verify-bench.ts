/**
 * `make bench-jwt` (issue 13): access-token verification, today's jose path against fast-jwt (the
 * verifier under @fastify/jwt) configured the same way (bench/fast-jwt-verifier.ts), in one process
 * and one interleaved run: every round measures every candidate once, in a rotated order, and the
 * report gives the median round per candidate (the machine is shared and noisy).
 *
 * Good token (the same valid ES256 access token, again and again):
 *   jose, TokenService.verifyAccess        cache on (TOKEN_CACHE_SIZE default 10000) and off (0)
 *   fast-jwt, key callback, + our checks   fast-jwt's cache on (10000) and off
 *   fast-jwt, @fastify/jwt way, + checks   decode, key by header.kid, a static-key verifier per key
 *   fast-jwt, key callback, alone          the verifier without our claim checks (its best case)
 * Bad tokens (what the attack suite and a token-guessing attacker send), each verifier with its
 * cache on as it would run (neither caches refusals): expired (validly signed), wrong signature
 * (another P-256 key, the real kid), alg none, unknown kid.
 *
 * Environment: BENCH_JWT_ROUNDS (7), BENCH_JWT_MS (ms per candidate per round, 300).
 * Prints a markdown table: ops/s (median round, and the range of all rounds), µs/op (wall, from the
 * median ops/s), CPU µs/op (process.cpuUsage, median round).
 */
import { KeyObject, generateKeyPairSync, sign as cryptoSign } from 'node:crypto'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { GatewayError } from '../src/errors.js'
import { KeyRing } from '../src/tokens/key-ring.js'
import { TokenService, nowSeconds, newId } from '../src/tokens/token-service.js'
import { envInt } from '../dev-tools/env-int.js'
import { FastJwtTokenVerifier, type FastJwtMode } from './fast-jwt-verifier.js'
import { fmt, median } from './bench-figures.js'

const ROUNDS = envInt('BENCH_JWT_ROUNDS', 7, 1)
const SAMPLE_MS = envInt('BENCH_JWT_MS', 300, 10)
const CACHE_SIZE = 10000
const ISSUER = 'auth-gateway'
const AUDIENCE = 'api'
const BATCH = 64

type Verify = (token: string) => Promise<unknown>
interface Candidate { id: string, token: string, verify: Verify, /** undefined: must verify; else the GatewayError code */ refuse?: string }
interface Sample { opsPerSec: number, cpuUsPerOp: number }

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

function signEs256 (key: KeyObject, header: unknown, payload: unknown): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
}

async function measure (c: Candidate, ms: number): Promise<Sample> {
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  const deadline = t0 + BigInt(ms) * 1_000_000n
  let ops = 0
  let now = t0
  do {
    if (c.refuse === undefined) {
      for (let i = 0; i < BATCH; i++) await c.verify(c.token)
    } else {
      for (let i = 0; i < BATCH; i++) {
        try { await c.verify(c.token) } catch { /* refused, as checked beforehand */ }
      }
    }
    ops += BATCH
    now = process.hrtime.bigint()
  } while (now < deadline)
  const cpu = process.cpuUsage(cpu0)
  const seconds = Number(now - t0) / 1e9
  return { opsPerSec: ops / seconds, cpuUsPerOp: (cpu.user + cpu.system) / ops }
}

/** Before measuring: the valid token verifies and each bad one is refused with its code, by every candidate. */
async function check (c: Candidate): Promise<void> {
  let outcome: string
  try {
    const claims = await c.verify(c.token) as { sub?: unknown }
    outcome = claims.sub === '1001' ? 'verified' : 'unexpected claims'
  } catch (err) {
    outcome = err instanceof GatewayError ? err.code : String(err)
  }
  const want = c.refuse ?? 'verified'
  if (outcome !== want) throw new Error(`${c.id}: ${outcome}, expected ${want}`)
}

async function main (): Promise<void> {
  const keys = await KeyRing.ephemeral()
  const key = KeyObject.from(keys.signing.privateKey as Parameters<typeof KeyObject.from>[0])
  const kid = keys.signing.kid
  const opts = { issuer: ISSUER, audience: AUDIENCE, accessTtl: 900, refreshTtl: 3600 }
  const joseCached = new TokenService(keys, { ...opts, cacheSize: CACHE_SIZE })
  const joseUncached = new TokenService(keys, { ...opts, cacheSize: 0 })
  const fast = (mode: FastJwtMode, cacheSize: number): FastJwtTokenVerifier =>
    new FastJwtTokenVerifier(keys, { issuer: ISSUER, audience: AUDIENCE, mode, cacheSize })
  const cbCached = fast('key-callback', CACHE_SIZE)
  const cbUncached = fast('key-callback', 0)
  const pluginCached = fast('plugin', CACHE_SIZE)
  const pluginUncached = fast('plugin', 0)

  const good = (await joseUncached.signAccess({ userId: '1001', username: 'alice', roles: ['user'] }, newId())).token
  const claims = JSON.parse(Buffer.from(good.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  const now = nowSeconds()
  const header = { alg: 'ES256', kid, typ: 'JWT' }
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  const bad = {
    expired: signEs256(key, header, { ...claims, iat: now - 1000, exp: now - 60 }),
    'wrong signature': signEs256(other, header, claims),
    'alg none': `${b64({ alg: 'none', kid, typ: 'JWT' })}.${b64(claims)}.`,
    'unknown kid': signEs256(key, { ...header, kid: 'no-such-key' }, claims)
  }

  const candidates: Candidate[] = [
    { id: 'valid token | jose (TokenService), cache on', token: good, verify: (t) => joseCached.verifyAccess(t) },
    { id: 'valid token | fast-jwt key callback + our checks, cache on', token: good, verify: (t) => cbCached.verifyAccess(t) },
    { id: 'valid token | fast-jwt @fastify/jwt way + our checks, cache on', token: good, verify: (t) => pluginCached.verifyAccess(t) },
    { id: 'valid token | fast-jwt key callback alone, cache on', token: good, verify: (t) => cbCached.raw(t) },
    { id: 'valid token | jose (TokenService), cache off', token: good, verify: (t) => joseUncached.verifyAccess(t) },
    { id: 'valid token | fast-jwt key callback + our checks, cache off', token: good, verify: (t) => cbUncached.verifyAccess(t) },
    { id: 'valid token | fast-jwt @fastify/jwt way + our checks, cache off', token: good, verify: (t) => pluginUncached.verifyAccess(t) },
    { id: 'valid token | fast-jwt key callback alone, cache off', token: good, verify: (t) => cbUncached.raw(t) },
    ...Object.entries(bad).flatMap(([what, token]) => {
      const refuse = what === 'expired' ? 'token_expired' : 'token_invalid'
      return [
        { id: `${what} | jose (TokenService), cache on`, token, refuse, verify: (t: string) => joseCached.verifyAccess(t) },
        { id: `${what} | fast-jwt key callback + our checks, cache on`, token, refuse, verify: (t: string) => cbCached.verifyAccess(t) },
        { id: `${what} | fast-jwt @fastify/jwt way + our checks, cache on`, token, refuse, verify: (t: string) =>
          pluginCached.verifyAccess(t) }
      ]
    })
  ]
  for (const c of candidates) await check(c)

  const loadBefore = loadavg()[0]!
  const samples = new Map<string, Sample[]>(candidates.map((c) => [c.id, []]))
  // Warm-up: every candidate once, not recorded.
  for (const c of candidates) await measure(c, Math.min(100, SAMPLE_MS))
  for (let round = 0; round < ROUNDS; round++) {
    const start = (round * 5) % candidates.length
    const order = [...candidates.slice(start), ...candidates.slice(0, start)]
    for (const c of order) samples.get(c.id)!.push(await measure(c, SAMPLE_MS))
    process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`)
  }
  const loadAfter = loadavg()[0]!

  const lines = [
    `Node ${process.version}, ${cpus()[0]?.model ?? 'CPU'} (${availableParallelism()} cores), load average ${loadBefore.toFixed(1)} ` +
      `before / ${loadAfter.toFixed(1)} after;`,
    `${ROUNDS} interleaved rounds of ${SAMPLE_MS} ms per candidate, median round; one token repeated (command: \`make bench-jwt\`).`,
    '',
    '| token | verifier | ops/s (median) | ops/s (all rounds) | µs/op | CPU µs/op |',
    '|---|---|---:|---:|---:|---:|'
  ]
  for (const c of candidates) {
    const s = samples.get(c.id)!
    const ops = median(s.map((x) => x.opsPerSec))
    const [token, verifier] = c.id.split(' | ') as [string, string]
    lines.push(
      `| ${token} | ${verifier} | ${fmt(ops)} ` +
        `| ${fmt(Math.min(...s.map((x) => x.opsPerSec)))}–${fmt(Math.max(...s.map((x) => x.opsPerSec)))} | ${fmt(1e6 / ops, 1)} ` +
          `| ${fmt(median(s.map((x) => x.cpuUsPerOp)), 1)} |`)
  }
  process.stdout.write(lines.join('\n') + '\n')
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
