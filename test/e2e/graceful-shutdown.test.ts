/**
 * Graceful shutdown of the built gateway process: SIGTERM under load. The gateway stops accepting
 * connections, every request it had accepted completes (200, or 503 shutting_down), and it exits
 * with status 0 within SHUTDOWN_GRACE_MS. A client may see its connection refused (not accepted),
 * never reset.
 */
import t from 'tap'
import { createServer, request as httpRequestRaw } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { httpRequest } from '../helper.js'
import { freePort, startRedis, waitFor } from '../helpers/redis-server.js'
import { ensureBuilt, exited, start, stop, waitUntilAnswering } from '../helpers/processes.js'
import { generatePrivateJwk } from '../../src/tokens/key-ring.js'

interface Outcome { started: number, ended: number, status?: number, code?: string, error?: string }

/** One request on a fresh connection (no keep-alive), so a closed listener shows as ECONNREFUSED. */
function once (port: number, token: string): Promise<Outcome> {
  const started = Date.now()
  return new Promise((resolve) => {
    const req = httpRequestRaw({ host: '127.0.0.1', port, path: '/api/orders', agent: false, headers: { authorization: `Bearer ${token}`, connection: 'close' } }, (res) => {
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
  t.ok(answered.every((o) => o.status === 200 || (o.status === 503 && o.code === 'shutting_down')), 'every answer is 200 or 503 shutting_down')
  const inFlight = answered.filter((o) => o.started < sigtermAt && o.ended >= sigtermAt)
  t.ok(inFlight.length > 0, `requests were in flight at SIGTERM (${inFlight.length})`)
  t.ok(inFlight.every((o) => o.status === 200), 'every request in flight at SIGTERM completed with 200')
})
