/**
 * The tap form of fastify/demo's test helper: `build(t)` starts a real redis-server, the users and
 * orders stub services and the gateway, all listening on free ports, and tears them down with t.
 */
import type { FastifyInstance } from 'fastify'
import { createLocalJWKSet } from 'jose'
import { buildGateway } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { KeyRing } from '../src/tokens/key-ring.js'
import type { ProxyRoute } from '../src/proxy/route-table.js'
import { buildOrdersService } from '../services/orders/app.js'
import { buildUsersService } from '../services/users/app.js'
import { testSeedHashes } from './helpers/test-password-hashes.js'
import { TEST_REDIS_COMMAND_TIMEOUT_MS } from './helpers/processes.js'
import type { StoredUser } from '../services/users/demo-users.js'
import { waitFor, type RedisProcess } from './helpers/redis-server.js'
import { redisUp } from './helpers/metrics.js'
import { startTestRedis } from './helpers/redis-cluster.js'
import { startRoundRobin } from './helpers/round-robin.js'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface HttpResult<T = any> {
  status: number
  headers: Headers
  body: T
  text: string
}

export interface RequestOptions {
  body?: unknown
  /** Sent as is, with `contentType` (default application/json). */
  rawBody?: string
  contentType?: string
  token?: string
  headers?: Record<string, string>
}

export interface Harness {
  gateway: FastifyInstance
  config: Config
  url: string
  redis: RedisProcess
  keyRing: KeyRing
  users: FastifyInstance
  orders: FastifyInstance
  request: <T = any>(method: string, path: string, opts?: RequestOptions) => Promise<HttpResult<T>>
  login: (username: string, password?: string,
    extra?: Record<string, unknown>) => Promise<{ access: string, refresh: string, user: { id: string } }>
}

export async function httpRequest<T = any> (baseUrl: string, method: string, path: string,
  opts: RequestOptions = {}): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...opts.headers }
  let body: string | undefined
  if (opts.rawBody !== undefined) {
    body = opts.rawBody
    headers['content-type'] ??= opts.contentType ?? 'application/json'
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body)
    headers['content-type'] ??= 'application/json'
  }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  const res = await fetch(baseUrl + path, { method, headers, body, redirect: 'manual' })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = text.length > 0 ? JSON.parse(text) : null } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: parsed as T, text }
}

export const PASSWORDS: Record<string, string> = {
  alice: 'alice-password', bob: 'bob-password', admin: 'admin-password', carol: 'carol-password'
}

export interface BuildOptions {
  /** Environment variables for loadConfig (contract names), on top of the test defaults. */
  env?: Record<string, string>
  keyRing?: KeyRing
  redis?: RedisProcess
  logger?: Parameters<typeof buildGateway>[1]
  /** A proxy route table instead of the contract's. */
  routes?: readonly ProxyRoute[]
  /** Users the users stub serves on top of the demo users (e.g. test/helpers/unicode-user.ts). */
  extraUsers?: readonly StoredUser[]
  /** The users stub with the demo users' real argon2id hashes (default: cheap ones, test/helpers/test-password-hashes.ts). */
  realPasswordHashes?: boolean
}

export async function build (t: Teardown, opts: BuildOptions = {}): Promise<Harness> {
  const redis = opts.redis ?? await startTestRedis()
  if (opts.redis === undefined) t.teardown(() => redis.stop())
  const keyRing = opts.keyRing ?? await KeyRing.ephemeral()
  const stubOpts = { keys: createLocalJWKSet(keyRing.publicJwks), issuer: opts.env?.JWT_ISSUER ?? 'auth-gateway' }

  const users = await buildUsersService({ ...stubOpts, extraUsers: opts.extraUsers ?? [],
    ...(opts.realPasswordHashes === true ? {} : { seedHashes: await testSeedHashes(PASSWORDS) }) })
  const orders = await buildOrdersService(stubOpts)
  const usersUrl = await users.listen({ port: 0, host: '127.0.0.1' })
  const ordersUrl = await orders.listen({ port: 0, host: '127.0.0.1' })

  const config = loadConfig({
    ...redis.env,
    USERS_URL: usersUrl,
    ORDERS_URL: ordersUrl,
    LOG_LEVEL: 'silent',
    REDIS_COMMAND_TIMEOUT_MS: TEST_REDIS_COMMAND_TIMEOUT_MS,
    // Limits out of the way of functional tests; the abuse-protection tests set their own.
    LOGIN_IP_LIMIT: '10000',
    VERIFY_IP_LIMIT: '10000',
    PUBLIC_IP_LIMIT: '10000',
    REFRESH_SESSION_LIMIT: '10000',
    API_USER_LIMIT: '100000',
    // `SESSION_CACHE=off npx tap ...` runs a suite with the per-request session check (docs/session-cache.md).
    ...(process.env.SESSION_CACHE !== undefined ? { SESSION_CACHE: process.env.SESSION_CACHE } : {}),
    ...opts.env
  })
  const gateway = await buildGateway(
    { config, keyRing, ...(opts.routes !== undefined ? { routes: opts.routes } : {}) },
    opts.logger ?? false
  )
  let url = await gateway.listen({ port: 0, host: '127.0.0.1' })
  // TEST_REPLICAS=2: a second replica on the same Redis, key ring and stubs, and each request of the
  // test goes to the next replica (test/helpers/round-robin.ts).
  const second = process.env.TEST_REPLICAS === '2' ? await buildGateway(
    { config, keyRing, ...(opts.routes !== undefined ? { routes: opts.routes } : {}) },
    opts.logger ?? false
  ) : undefined
  const front = second === undefined ? undefined : await startRoundRobin([url, await second.listen({ port: 0, host: '127.0.0.1' })])
  if (front !== undefined) url = front.url

  t.teardown(async () => {
    await front?.close()
    await second?.close()
    await gateway.close()
    await users.close()
    await orders.close()
  })

  const request = <T = any>(method: string, path: string, o?: RequestOptions): Promise<HttpResult<T>> =>
    httpRequest<T>(url, method, path, o)
  // Tests start from a gateway connected to Redis, never race its first connect (readiness ignores Redis).
  await waitFor(() => redisUp(url), 'gateway_redis_up 1')
  const login: Harness['login'] = async (username, password, extra = {}) => {
    const res = await request('POST', '/auth/login', { body: { username, password: password ?? PASSWORDS[username], ...extra } })
    if (res.status !== 200) throw new Error(`login of ${username} failed: ${res.status} ${res.text}`)
    return res.body
  }
  return { gateway, config, url, redis, keyRing, users, orders, request, login }
}
