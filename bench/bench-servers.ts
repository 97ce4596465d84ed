/**
 * The servers of the proxy benchmark, one per process (forked by proxy-bench.ts, so that none of
 * them shares an event loop with autocannon or with another server):
 *
 *   node dist/bench/bench-servers.js upstream               a node:http upstream (GET /api/orders → small JSON)
 *   node dist/bench/bench-servers.js bare <spec>            a bare @fastify/http-proxy in front of it
 *   node dist/bench/bench-servers.js gateway <spec>         the gateway (buildGateway), route /api/orders → upstream
 *   node dist/bench/bench-servers.js bare-check <spec>      floor: the bare proxy + the gateway's session check (one EVALSHA)
 *   node dist/bench/bench-servers.js lean-check <spec>      floor: an undici dispatch proxy (lean-proxy.ts) + the same check
 *   node dist/bench/bench-servers.js orders <spec>          the real orders stub (checks the gateway's assertion)
 *   node dist/bench/bench-servers.js users <spec>           the real users stub (argon2id credential checks)
 *
 * IPC: the child sends { type: 'ready', url }; the parent may ask a gateway for { type: 'token' }
 * (a live session in Redis and an access token for it), { type: 'tokens', count, users } (many
 * sessions of many users, for the soak) or { type: 'assertion' } (an assertion for the orders
 * stub), any child for { type: 'memory' } (its RSS), and ends every child with { type: 'stop' }.
 */
import { createServer } from 'node:http'
import v8 from 'node:v8'
import Fastify from 'fastify'
import { createLocalJWKSet } from 'jose'
import { buildOrdersService } from '../services/orders/app.js'
import { buildUsersService } from '../services/users/app.js'
import proxy from '@fastify/http-proxy'
import { buildGateway } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import configPlugin from '../src/plugins/app/config.js'
import redisStore from '../src/plugins/app/redis-store.js'
import sessionStore from '../src/plugins/app/session-store.js'
import { LIMIT_WINDOW_MS } from '../src/limits/limit-headers.js'
import { leanProxy } from './lean-proxy.js'
import { KeyRing, type PrivateJwk } from '../src/tokens/key-ring.js'
import { newId } from '../src/tokens/token-service.js'

export interface ServerSpec {
  upstreamUrl?: string
  redisUrl?: string
  jwk?: PrivateJwk
  /** TOKEN_CACHE_SIZE of the gateway (undefined: the default). */
  tokenCacheSize?: number
  /** The users upstream of the gateway (default: upstreamUrl). */
  usersUrl?: string
  /** More gateway environment (make capacity: a Redis command timeout for a loaded machine). */
  env?: Record<string, string>
  /** FORWARD_AUTH_PROXIES of the gateway (the nginx + /auth/check target). */
  forwardAuthProxies?: string
}

export type ChildMessage =
  | { type: 'ready', url: string }
  | { type: 'token', token: string }
  | { type: 'tokens', tokens: string[] }
  | { type: 'assertion', assertion: string }
  | { type: 'memory', rss: number, heapUsed: number }
  | { type: 'cpu', micros: number, connections: number, gcMicros: number, allocatedBytes: number }
  | { type: 'error', message: string }

export type ParentMessage =
  /** `jkt`: a DPoP-bound token (cnf.jkt) for the DPoP target. */
  | { type: 'token', jkt?: string }
  | { type: 'tokens', count: number, users: number }
  | { type: 'assertion' }
  /** `gc`: collect garbage first (when the process runs with --expose-gc), for a steady heap figure. */
  | { type: 'memory', gc?: boolean }
  | { type: 'cpu' }
  | { type: 'stop' }

/** What a server process can be asked beyond its URL. */
interface Server {
  url: string
  close: Closer
  token?: (jkt?: string) => Promise<string>
  tokens?: (count: number, users: number) => Promise<string[]>
  assertion?: () => Promise<string>
}

export const ORDERS_PATH = '/api/orders'
const ORDERS_BODY = JSON.stringify({ orders: [{ id: 'o-1', item: 'book', quantity: 1, total: 12.5 },
  { id: 'o-2', item: 'pen', quantity: 3, total: 4.5 }] })

function send (message: ChildMessage): void {
  process.send?.(message)
}

type Closer = () => Promise<void>

/** TCP connections the server accepted so far (a proxy that reuses its upstream connections opens few). */
let accepted = 0

async function startUpstream (): Promise<{ url: string, close: Closer }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    if (req.method === 'GET' && (path === ORDERS_PATH || path.startsWith(ORDERS_PATH + '/'))) {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(ORDERS_BODY) })
      res.end(ORDERS_BODY)
      return
    }
    res.writeHead(404, { 'content-length': 0 })
    res.end()
  })
  server.keepAliveTimeout = 65_000
  server.on('connection', () => { accepted++ })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

async function startBareProxy (spec: ServerSpec): Promise<{ url: string, close: Closer }> {
  const app = Fastify({ logger: false })
  await app.register(proxy, { upstream: spec.upstreamUrl!, prefix: ORDERS_PATH, rewritePrefix: ORDERS_PATH })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url, close: () => app.close() }
}

/** A stub service with the gateway's public key, as the dev stack runs it (but with local keys). */
async function startStub (build: typeof buildOrdersService, spec: ServerSpec): Promise<Server> {
  const keyRing = await KeyRing.fromJwks([spec.jwk!], true)
  const app = await build({ keys: createLocalJWKSet(keyRing.publicJwks), issuer: 'auth-gateway' }, false)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url, close: () => app.close() }
}

/** The gateway's configuration in the bench: limits out of the way, silent logs. */
function benchConfig (spec: ServerSpec): Config {
  const env: Record<string, string> = {
    REDIS_URL: spec.redisUrl!,
    ORDERS_URL: spec.upstreamUrl!,
    USERS_URL: spec.usersUrl ?? spec.upstreamUrl!,
    LOG_LEVEL: 'silent',
    API_USER_LIMIT: '100000000',
    PUBLIC_IP_LIMIT: '100000000',
    VERIFY_IP_LIMIT: '100000000',
    LOGIN_IP_LIMIT: '100000000',
    REFRESH_SESSION_LIMIT: '100000000',
    // One user drives every connection of the benchmark.
    UPSTREAM_USER_CONCURRENCY: '100000',
    // The bench's upstream knows no users: the state recorded with the session must last the run.
    USER_STATE_TTL: '86400'
  }
  if (spec.tokenCacheSize !== undefined) env.TOKEN_CACHE_SIZE = String(spec.tokenCacheSize)
  if (spec.forwardAuthProxies !== undefined) env.FORWARD_AUTH_PROXIES = spec.forwardAuthProxies
  return loadConfig({ ...env, ...spec.env })
}

/**
 * The floors: the least any gateway can do under the contract, which checks the session and counts
 * the user's request in Redis on every proxied request (one round trip). Each is Fastify with the
 * gateway's own config, redis-store and session-store plugins, a live session, and that check
 * (`SessionStore.isAliveCounted`) before forwarding: through @fastify/http-proxy (`bare-check`) or
 * through lean-proxy.ts (`lean-check`). No token, headers, limits or metrics.
 */
async function startFloor (spec: ServerSpec, proxyPath: 'reply-from' | 'lean'): Promise<Server> {
  const app = Fastify({ logger: false })
  // The floor is the per-request check: no session cache (docs/session-cache.md).
  await app.register(configPlugin, { config: benchConfig({ ...spec, env: { ...spec.env, SESSION_CACHE: 'off' } }) })
  await app.register(redisStore)
  await app.register(sessionStore)
  const sessionId = newId()
  await app.sessions.create({ userId: '1001', username: 'alice', roles: ['user'], sessionId, refreshJti: newId(), ip: '127.0.0.1',
    userAgent: 'proxy-bench' })
  const check = async (): Promise<void> => {
    const { alive } = await app.sessions.isAliveCounted('1001', sessionId, LIMIT_WINDOW_MS)
    if (!alive) throw new Error('the floor\'s session is gone')
  }
  if (proxyPath === 'lean') leanProxy(app, { upstream: spec.upstreamUrl!, prefix: ORDERS_PATH, before: check })
  else await app.register(proxy, { upstream: spec.upstreamUrl!, prefix: ORDERS_PATH, rewritePrefix: ORDERS_PATH,
    preHandler: (_request, _reply, done) => { check().then(() => done(), done) } })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url, close: () => app.close() }
}

async function startGateway (spec: ServerSpec): Promise<Server> {
  const config = benchConfig(spec)
  // The same key in every gateway process: one token is valid for all of them.
  const keyRing = await KeyRing.fromJwks([spec.jwk!], true)
  const gateway = await buildGateway({ config, keyRing, routes: [{ path: ORDERS_PATH, upstream: 'orders', limit: 'api' }] }, false)
  const identityOf = (n: number): { userId: string, username: string, roles: string[] } =>
    ({ userId: String(100000 + n), username: `user${n}`, roles: ['user'] })
  const url = await gateway.listen({ port: 0, host: '127.0.0.1' })
  // A session and its access token, made by the gateway's own session store and token service.
  const token = async (jkt?: string): Promise<string> => {
    const sessionId = newId()
    const identity = { userId: '1001', username: 'alice', roles: ['user'] }
    await gateway.sessions.create({ ...identity, sessionId, refreshJti: newId(), ip: '127.0.0.1', userAgent: 'proxy-bench' })
    return (await gateway.tokens.signAccess(identity, sessionId, { jkt })).token
  }
  // Many sessions of many users, for the memory soak: distinct tokens, sessions and counters.
  const tokens = async (count: number, users: number): Promise<string[]> => {
    const out: string[] = []
    for (let i = 0; i < count; i++) {
      const identity = identityOf(i % users)
      const sessionId = newId()
      await gateway.sessions.create({ ...identity, sessionId, refreshJti: newId(), ip: '127.0.0.1', userAgent: 'soak' })
      out.push((await gateway.tokens.signAccess(identity, sessionId)).token)
    }
    return out
  }
  // An assertion as the gateway sends it to the orders stub (for the stub-alone target).
  const assertion = (): Promise<string> => gateway.tokens.signAssertion('orders', '1001', { username: 'alice', roles: ['user'] })
  return { url, close: () => gateway.close(), token, tokens, assertion }
}

/**
 * GC pause time and bytes allocated so far (v8.GCProfiler): the bytes allocated between two
 * collections are the heap used before the second minus the heap left after the first.
 */
let profiler = new v8.GCProfiler()
profiler.start()
const gcTotals = { gcMicros: 0, allocatedBytes: 0, lastUsed: v8.getHeapStatistics().used_heap_size }
function gcSoFar (): { gcMicros: number, allocatedBytes: number } {
  const stats = profiler.stop()?.statistics ?? []
  profiler = new v8.GCProfiler()
  profiler.start()
  for (const gc of stats) {
    gcTotals.gcMicros += gc.cost
    gcTotals.allocatedBytes += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - gcTotals.lastUsed)
    gcTotals.lastUsed = gc.afterGC.heapStatistics.usedHeapSize
  }
  const used = v8.getHeapStatistics().used_heap_size
  gcTotals.allocatedBytes += Math.max(0, used - gcTotals.lastUsed)
  gcTotals.lastUsed = used
  return { gcMicros: gcTotals.gcMicros, allocatedBytes: gcTotals.allocatedBytes }
}

async function main (): Promise<void> {
  const role = process.argv[2]
  const spec = JSON.parse(process.argv[3] ?? '{}') as ServerSpec
  let server: Server
  if (role === 'upstream') server = await startUpstream()
  else if (role === 'bare') server = await startBareProxy(spec)
  else if (role === 'gateway') server = await startGateway(spec)
  else if (role === 'bare-check') server = await startFloor(spec, 'reply-from')
  else if (role === 'lean-check') server = await startFloor(spec, 'lean')
  else if (role === 'orders') server = await startStub(buildOrdersService, spec)
  else if (role === 'users') server = await startStub(buildUsersService, spec)
  else throw new Error(`unknown server role ${String(role)}`)

  process.on('message', (message: ParentMessage) => {
    if (message.type === 'token') {
      if (server.token === undefined) { send({ type: 'error', message: `${role} has no tokens` }); return }
      server.token(message.jkt).then(
        (token) => send({ type: 'token', token }),
        (err: Error) => send({ type: 'error', message: err.message })
      )
    } else if (message.type === 'tokens') {
      if (server.tokens === undefined) { send({ type: 'error', message: `${role} has no tokens` }); return }
      server.tokens(message.count, message.users).then((tokens) => send({ type: 'tokens', tokens }), (err: Error) =>
        send({ type: 'error', message: err.message }))
    } else if (message.type === 'assertion') {
      if (server.assertion === undefined) { send({ type: 'error', message: `${role} has no assertions` }); return }
      server.assertion().then((assertion) => send({ type: 'assertion', assertion }), (err: Error) =>
        send({ type: 'error', message: err.message }))
    } else if (message.type === 'memory') {
      if (message.gc === true) globalThis.gc?.()
      const { rss, heapUsed } = process.memoryUsage()
      send({ type: 'memory', rss, heapUsed })
    } else if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage()
      const gc = gcSoFar()
      send({ type: 'cpu', micros: user + system, connections: accepted, ...gc })
    } else if (message.type === 'stop') {
      // A normal exit, so that --cpu-prof writes its profile.
      void server.close().finally(() => process.exit(0))
    }
  })
  // The parent went away: do not linger.
  process.on('disconnect', () => process.exit(0))
  send({ type: 'ready', url: server.url })
}

main().catch((err: Error) => {
  send({ type: 'error', message: err.stack ?? err.message })
  process.exit(1)
})
