/**
 * Graceful shutdown of the built gateway process: SIGTERM under load. The gateway stops accepting
 * connections, every request it had accepted completes (200, or 503 shutting_down), and it exits
 * with status 0 within SHUTDOWN_GRACE_MS. A client may see its connection refused (not accepted),
 * never reset. Readiness: 200 while serving, 503 from SIGTERM on (also with Redis away: Redis
 * does not take the replica out of its Service).
 */
import t from 'tap'
import { Agent, createServer, request as httpRequestRaw } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { httpRequest } from '../helper.js'
import { freePort, startRedis, waitFor } from '../helpers/redis-server.js'
import { answers, ensureBuilt, exited, start, stop, waitUntilAnswering } from '../helpers/processes.js'
import { redisUp } from '../helpers/metrics.js'
import { generatePrivateJwk } from '../../src/tokens/key-ring.js'

interface Outcome { started: number, ended: number, status?: number, code?: string, error?: string }

/** One request on a fresh connection (no keep-alive), so a closed listener shows as ECONNREFUSED. */
function once (port: number, token: string): Promise<Outcome> {
  const started = Date.now()
  return new Promise((resolve) => {
    const req = httpRequestRaw({ host: '127.0.0.1', port, path: '/api/orders', agent: false,
      headers: { authorization: `Bearer ${token}`, connection: 'close' } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => {
        let code: string | undefined
        try { code = (JSON.parse(body) as { code?: string }).code } catch { /* not JSON */ }
        resolve({ started, ended: Date.now(), status: res.statusCode ?? 0, ...(code !== undefined ? { code } : {}) })
      })
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ started, ended: Date.now(), error: err.code ?? err.message }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ started, ended: Date.now(), error: err.code ?? err.message }))
    req.end()
  })
}

t.test('SIGTERM under load: no accepted request fails', async (t) => {
  ensureBuilt()
  const redis = await startRedis()
  t.teardown(() => redis.stop())

  // A slow upstream: every answer takes 300 ms, so SIGTERM always finds requests in flight.
  let received = 0
  const upstream = createServer((_req, res) => {
    received++
    setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"orders":[]}') }, 300)
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { upstream.closeAllConnections(); upstream.close(() => resolve()) }))
  const upstreamPort = (upstream.address() as { port: number }).port

  const dir = await mkdtemp(join(tmpdir(), 'gw-shutdown-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keysFile = join(dir, 'jwks.json')
  await writeFile(keysFile, JSON.stringify({ keys: [await generatePrivateJwk()] }), { mode: 0o600 })

  const [gatewayPort, usersPort] = [await freePort(), await freePort()]
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`
  const users = start('users', 'dist/services/users/server.js', {
    HOST: '127.0.0.1', USERS_PORT: String(usersPort), GATEWAY_JWKS_URL: `${gatewayUrl}/.well-known/jwks.json`, LOG_LEVEL: 'warn'
  })
  t.teardown(() => stop(users))
  const gateway = start('gateway', 'dist/src/server.js', {
    PORT: String(gatewayPort),
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    USERS_URL: `http://127.0.0.1:${usersPort}`,
    ORDERS_URL: `http://127.0.0.1:${upstreamPort}`,
    JWT_KEYS_FILE: keysFile,
    SHUTDOWN_GRACE_MS: '10000',
    API_USER_LIMIT: '1000000',
    LOG_LEVEL: 'warn'
  })
  t.teardown(() => stop(gateway))
  await waitUntilAnswering(users, `http://127.0.0.1:${usersPort}/healthz`)
  await waitUntilAnswering(gateway, `${gatewayUrl}/readyz`)

  const login = await httpRequest(gatewayUrl, 'POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(login.status, 200, 'alice logs in')
  const token = login.body.access as string

  // 20 clients, each sending requests one after another until the gateway stops accepting.
  const outcomes: Outcome[] = []
  const clients = Array.from({ length: 20 }, async () => {
    for (;;) {
      const outcome = await once(gatewayPort, token)
      outcomes.push(outcome)
      if (outcome.error !== undefined) return
    }
  })

  await waitFor(() => received >= 40, 'load on the upstream')
  const sigtermAt = Date.now()
  gateway.child.kill('SIGTERM')
  await Promise.all(clients)
  const code = await exited(gateway)

  t.equal(code, 0, `the gateway exits with status 0 within SHUTDOWN_GRACE_MS${code === 0 ? '' : `: ${gateway.output()}`}`)
  const refused = outcomes.filter((o) => o.error === 'ECONNREFUSED')
  const failed = outcomes.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED')
  t.same(failed.map((o) => o.error), [], 'no accepted request failed (no reset, no hang-up)')
  t.equal(refused.length, 20, 'after SIGTERM new connections are refused, one per client')
  const answered = outcomes.filter((o) => o.status !== undefined)
  t.ok(answered.every((o) => o.status === 200 || (o.status === 503 && o.code === 'shutting_down')),
    'every answer is 200 or 503 shutting_down')
  const inFlight = answered.filter((o) => o.started < sigtermAt && o.ended >= sigtermAt)
  t.ok(inFlight.length > 0, `requests were in flight at SIGTERM (${inFlight.length})`)
  t.ok(inFlight.every((o) => o.status === 200), 'every request in flight at SIGTERM completed with 200')
})

/** One GET through `agent` (keep-alive: the same connection as the requests before it). */
function get (agent: Agent, port: number, path: string, token?: string): Promise<{ status: number, code?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequestRaw({ host: '127.0.0.1', port, path, agent, headers: token === undefined ? {}
      : { authorization: `Bearer ${token}` } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => {
        let code: string | undefined
        try { code = (JSON.parse(body) as { code?: string }).code } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, ...(code !== undefined ? { code } : {}) })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('/readyz: 200 without Redis, 503 from SIGTERM on while in-flight requests finish', async (t) => {
  ensureBuilt()
  const redis = await startRedis()
  t.teardown(() => redis.stop())

  // An upstream that holds every request until the test lets it answer.
  const held: Array<() => void> = []
  const upstream = createServer((_req, res) => {
    held.push(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"orders":[]}') })
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { upstream.closeAllConnections(); upstream.close(() => resolve()) }))

  const dir = await mkdtemp(join(tmpdir(), 'gw-readyz-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keysFile = join(dir, 'jwks.json')
  await writeFile(keysFile, JSON.stringify({ keys: [await generatePrivateJwk()] }), { mode: 0o600 })
  const [gatewayPort, usersPort] = [await freePort(), await freePort()]
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`
  const users = start('users', 'dist/services/users/server.js', {
    HOST: '127.0.0.1', USERS_PORT: String(usersPort), GATEWAY_JWKS_URL: `${gatewayUrl}/.well-known/jwks.json`, LOG_LEVEL: 'warn'
  })
  t.teardown(() => stop(users))
  const gateway = start('gateway', 'dist/src/server.js', {
    PORT: String(gatewayPort),
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    USERS_URL: `http://127.0.0.1:${usersPort}`,
    ORDERS_URL: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`,
    JWT_KEYS_FILE: keysFile,
    SHUTDOWN_GRACE_MS: '10000',
    LOG_LEVEL: 'warn'
  })
  t.teardown(() => stop(gateway))
  await waitUntilAnswering(users, `http://127.0.0.1:${usersPort}/healthz`)
  await waitUntilAnswering(gateway, `${gatewayUrl}/readyz`)
  await redis.kill()
  t.equal((await httpRequest(gatewayUrl, 'GET', '/readyz')).status, 200,
    'Redis away: still ready (its requests answer 503 store_unavailable)')
  await redis.restart()
  await waitFor(() => redisUp(gatewayUrl), 'the gateway back on Redis')
  const login = await httpRequest(gatewayUrl, 'POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(login.status, 200, 'alice logs in')

  // One kept-alive connection: ready, then a request the upstream holds.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  t.equal((await get(agent, gatewayPort, '/readyz')).status, 200, 'ready before SIGTERM')
  const inFlight = get(agent, gatewayPort, '/api/orders', login.body.access as string)
  await waitFor(() => held.length === 1, 'the request at the upstream')

  gateway.child.kill('SIGTERM')
  // The listener closes once the drain has begun: new connections are refused from then on.
  await waitFor(async () => !(await answers(`${gatewayUrl}/healthz`)), 'new connections refused after SIGTERM')
  held[0]!()
  t.equal((await inFlight).status, 200, 'the request in flight at SIGTERM completes')
  const draining = await get(agent, gatewayPort, '/readyz')
  t.same(draining, { status: 503, code: 'shutting_down' }, 'readiness on the same connection after SIGTERM: 503 shutting_down')
  t.equal(await exited(gateway), 0, 'the gateway exits with status 0')
})
