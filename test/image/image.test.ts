/**
 * The container image run for real (`make test-image`, part of `make test`): Redis from the host,
 * the gateway and the two stubs from localhost/auth-gateway:latest with podman, `--network host`
 * on free ports, a read-only root filesystem, and the private JWKS from a mounted file.
 * A login and a proxied call go through; the processes run as a non-root user; SIGTERM lets an
 * in-flight request complete and the gateway exits 0. The image's undici carries the project's
 * patch (patches/, applied by the Dockerfile's build stage). Containers are removed even on failure.
 */
import t from 'tap'
import { createServer, request as rawRequest } from 'node:http'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeProtectedHeader } from 'jose'
import { httpRequest } from '../helper.js'
import { freePort, startRedis, waitFor } from '../helpers/redis-server.js'
import { ROOT, answers } from '../helpers/processes.js'
import { GATEWAY_IMAGE, LABELS, imageExists, podman, removeRunContainers, uniqueName } from '../helpers/podman.js'
import { generatePrivateJwk } from '../../src/tokens/key-ring.js'
import { redisUp } from '../helpers/metrics.js'


t.test('the image runs the stack: non-root, read-only, JWT_KEYS_FILE, SIGTERM drains', async (t) => {
  t.ok(await imageExists(GATEWAY_IMAGE), `${GATEWAY_IMAGE} exists (make image builds it)`)
  t.teardown(removeRunContainers)

  const redis = await startRedis()
  t.teardown(() => redis.stop())

  const dir = await mkdtemp(join(tmpdir(), 'gw-image-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const jwk = await generatePrivateJwk()
  const keysFile = join(dir, 'jwks.json')
  await writeFile(keysFile, JSON.stringify({ keys: [jwk] }))
  // The container runs as uid 1000: the mounted file must be readable by it.
  await chmod(keysFile, 0o644)
  await chmod(dir, 0o755)

  // Orders traffic goes through a delaying relay on the host, so that SIGTERM finds a request in flight.
  const [gatewayPort, usersPort, ordersPort, relayPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  let delayMs = 0
  let relayed = 0
  const relay = createServer((req, res) => {
    relayed++
    setTimeout(() => {
      const up = rawRequest({ host: '127.0.0.1', port: ordersPort, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        upRes.pipe(res)
      })
      up.on('error', () => { res.writeHead(502); res.end() })
      req.pipe(up)
    }, delayMs)
  })
  await new Promise<void>((resolve) => relay.listen(relayPort, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { relay.closeAllConnections(); relay.close(() => resolve()) }))

  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`
  const common = ['--detach', ...LABELS, '--network', 'host', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges']
  const stubEnv = ['--env', 'HOST=127.0.0.1', '--env', `GATEWAY_JWKS_URL=${gatewayUrl}/.well-known/jwks.json`, '--env', 'LOG_LEVEL=warn']
  const names = { users: uniqueName('gw-users'), orders: uniqueName('gw-orders'), gateway: uniqueName('gw-gateway') }
  const logs = async (name: string): Promise<string> => { const r = await podman(['logs', '--tail', '40', name]); return r.stdout
    + r.stderr }

  const started = await Promise.all([
    podman(['run', ...common, '--name', names.users, ...stubEnv, '--env', `USERS_PORT=${usersPort}`, GATEWAY_IMAGE, 'node',
      'dist/services/users/server.js']),
    podman(['run', ...common, '--name', names.orders, ...stubEnv, '--env', `ORDERS_PORT=${ordersPort}`, GATEWAY_IMAGE, 'node',
      'dist/services/orders/server.js']),
    podman(['run', ...common, '--name', names.gateway,
      '--volume', `${keysFile}:/etc/auth-gateway/jwks.json:ro`,
      '--env', 'HOST=127.0.0.1', '--env', `PORT=${gatewayPort}`, '--env', `REDIS_URL=${redis.url}`,
      '--env', `USERS_URL=http://127.0.0.1:${usersPort}`, '--env', `ORDERS_URL=http://127.0.0.1:${relayPort}`,
      '--env', 'JWT_KEYS_FILE=/etc/auth-gateway/jwks.json', '--env', 'SHUTDOWN_GRACE_MS=10000', '--env', 'LOG_LEVEL=warn',
      GATEWAY_IMAGE])
  ])
  for (const r of started) t.equal(r.code, 0, `podman run: ${r.stderr.trim().slice(-500)}`)

  try {
    await waitFor(() => answers(`http://127.0.0.1:${usersPort}/healthz`), 'users stub container', 120_000)
    await waitFor(() => answers(`http://127.0.0.1:${ordersPort}/healthz`), 'orders stub container', 120_000)
    await waitFor(() => redisUp(gatewayUrl), 'gateway container up and connected to Redis (readiness ignores Redis)', 120_000)
  } catch (err) {
    t.fail(`${String(err)}\n${await logs(names.gateway)}\n${await logs(names.users)}`)
    return
  }

  // Non-root, read-only root filesystem, for every program of the image.
  for (const name of Object.values(names)) {
    const uid = await podman(['exec', name, 'node', '-e', 'process.stdout.write(String(process.getuid()))'])
    t.not(uid.stdout.trim(), '0', `${name} runs as a non-root user (uid ${uid.stdout.trim()})`)
    t.match(uid.stdout.trim(), /^\d+$/, 'the uid is readable')
    const write = await podman(['exec', name, 'node', '-e', 'require("fs").writeFileSync("/app/probe", "x")'])
    t.not(write.code, 0, `${name}: writing into /app fails`)
    t.match(write.stderr, /EROFS|read-only/i, `${name}: the root filesystem is read-only`)
  }
  const user = await podman(['image', 'inspect', '--format', '{{.Config.User}}', GATEWAY_IMAGE])
  t.match(user.stdout.trim(), /^[1-9]\d*(:\d+)?$/, 'the image declares a numeric non-root USER')
  // The runtime the project names in .node-version (Node 24 LTS), and no npm to install with.
  const nodeVersion = (await readFile(join(ROOT, '.node-version'), 'utf8')).trim()
  const runtime = await podman(['run', '--rm', ...LABELS, GATEWAY_IMAGE, 'sh', '-c', 'node --version; command -v npm || echo no-npm'])
  t.same(runtime.stdout.trim().split('\n'), [`v${nodeVersion}`, 'no-npm'], `the image runs Node ${nodeVersion} and has no npm`)

  // JWT_KEYS_FILE from the mounted file: the gateway publishes and signs with that key.
  const jwks = await httpRequest<{ keys: Array<{ kid: string, d?: string }> }>(gatewayUrl, 'GET', '/.well-known/jwks.json')
  t.equal(jwks.status, 200)
  t.same(jwks.body.keys.map((k) => k.kid), [jwk.kid], 'the published key is the one of the mounted file')
  t.notOk(jwks.body.keys.some((k) => k.d !== undefined), 'no private part is published')

  const login = await httpRequest(gatewayUrl, 'POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(login.status, 200, `alice logs in through the users container: ${login.text.slice(0, 200)}`)
  const access = (login.body as { access: string }).access
  t.equal(decodeProtectedHeader(access).kid, jwk.kid, 'the access token is signed with the mounted key')

  const orders = await httpRequest(gatewayUrl, 'GET', '/api/orders', { token: access })
  t.equal(orders.status, 200, `a proxied GET reaches the orders container: ${orders.text.slice(0, 200)}`)
  t.ok(relayed >= 1, 'the call went through the upstream')

  // SIGTERM while a request is in flight: it completes, then the gateway exits 0.
  delayMs = 1_500
  const before = relayed
  const inFlight = httpRequest(gatewayUrl, 'GET', '/api/orders', { token: access })
  await waitFor(() => relayed > before, 'the request reaching the upstream', 30_000)
  const kill = await podman(['kill', '--signal', 'TERM', names.gateway])
  t.equal(kill.code, 0, 'SIGTERM sent to the gateway container')
  const answer = await inFlight
  t.equal(answer.status, 200, 'the in-flight request completes after SIGTERM')
  const waited = await podman(['wait', names.gateway], 60_000)
  t.equal(waited.stdout.trim(), '0', `the gateway exits with status 0 after draining\n${await logs(names.gateway)}`)
  await waitFor(async () => !(await answers(`${gatewayUrl}/healthz`)), 'the gateway port closed', 30_000)
})

// The Dockerfile installs with --ignore-scripts, so the postinstall that applies patches/ does not
// run there: its build stage applies them itself. Checked in the image: undici (from /app, the copy
// the gateway loads) takes an upstream's unsolicited 100 Continue as an interim answer
// (docs/proxy.md, "Interim answers") instead of destroying the connection.
const UNSOLICITED_100 = `
const net = require('node:net')
const { request } = require('undici')
const server = net.createServer((socket) => {
  socket.once('data', () => socket.end('HTTP/1.1 100 Continue\\r\\n\\r\\nHTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok'))
})
server.listen(0, '127.0.0.1', async () => {
  try {
    const res = await request('http://127.0.0.1:' + server.address().port + '/')
    const body = await res.body.text()
    process.stdout.write(res.statusCode + ' ' + body)
    process.exit(res.statusCode === 200 && body === 'ok' ? 0 : 1)
  } catch (err) {
    process.stdout.write('error ' + (err.code ?? err.message))
    process.exit(1)
  }
})
`

t.test('the image\'s undici is patched: an unsolicited 100 Continue, then 200', async (t) => {
  t.ok(await imageExists(GATEWAY_IMAGE), `${GATEWAY_IMAGE} exists (make image builds it)`)
  t.teardown(removeRunContainers)
  const r = await podman(['run', '--rm', ...LABELS, '--network', 'none', '--read-only', GATEWAY_IMAGE, 'node', '-e', UNSOLICITED_100])
  const why = r.code === 0 ? '' : `: ${r.stderr.trim().slice(-500)}`
  t.equal(r.stdout.trim(), '200 ok', `undici in the image returns the final answer${why}`)
  t.equal(r.code, 0, 'the check exits 0')
})
