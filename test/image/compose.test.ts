/**
 * docker-compose.yml itself, run with podman-compose: Redis, the two stubs and the gateway on a
 * compose network, only the gateway published (on a free port of 127.0.0.1 here). A login and a
 * proxied call go through the published port. The project is taken down (containers, network,
 * volume) even when the test fails.
 */
import t from 'tap'
import { execFile, execFileSync } from 'node:child_process'
import { copyFile, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { onExit } from 'signal-exit'
import { httpRequest } from '../helper.js'
import { freePort, waitFor } from '../helpers/redis-server.js'
import { ROOT } from '../helpers/processes.js'
import { GATEWAY_IMAGE, PODMAN_ENV, REDIS_IMAGE, imageExists, podman } from '../helpers/podman.js'
import { generatePrivateJwk } from '../../src/tokens/key-ring.js'
import { redisUp } from '../helpers/metrics.js'

const run = promisify(execFile)

/** The image name docker-compose.yml uses for the three programs. */
const COMPOSE_APP_IMAGE = 'localhost/auth-gateway:local'

t.test('docker-compose.yml runs with podman-compose', async (t) => {
  t.ok(await imageExists(GATEWAY_IMAGE), `${GATEWAY_IMAGE} exists (make image builds it)`)
  t.ok(await imageExists(REDIS_IMAGE), `${REDIS_IMAGE} exists (make image builds it)`)
  t.equal((await podman(['tag', GATEWAY_IMAGE, COMPOSE_APP_IMAGE])).code, 0, `tagged as ${COMPOSE_APP_IMAGE}`)

  // The compose file, unchanged, in a folder of its own with the private JWKS it mounts (./keys/jwks.json).
  const dir = await mkdtemp(join(tmpdir(), 'gw-compose-'))
  await copyFile(join(ROOT, 'docker-compose.yml'), join(dir, 'docker-compose.yml'))
  await mkdir(join(dir, 'keys'))
  const jwk = await generatePrivateJwk()
  await writeFile(join(dir, 'keys/jwks.json'), JSON.stringify({ keys: [jwk] }))
  await chmod(join(dir, 'keys/jwks.json'), 0o644)

  const project = `agw${process.pid}`
  const port = await freePort()
  const env = { ...PODMAN_ENV, REDIS_IMAGE, GATEWAY_PUBLISH: `127.0.0.1:${port}`, LOG_LEVEL: 'warn', COMPOSE_PROJECT_NAME: project }
  const compose = (args: string[], timeout = 300_000): Promise<{ stdout: string, stderr: string }> =>
    run('podman-compose', ['-p', project, '-f', join(dir, 'docker-compose.yml'), ...args],
      { env, cwd: dir, timeout, maxBuffer: 32 * 1024 * 1024 })
  const down = (): void => {
    try { execFileSync('podman-compose', ['-p', project, '-f', join(dir, 'docker-compose.yml'), 'down', '-v', '-t', '0'],
      { env, cwd: dir, stdio: 'ignore', timeout: 120_000 }) } catch { /* already down */ }
    try { execFileSync('podman', ['rm', '-f', '-t', '0', '--filter', `label=io.podman.compose.project=${project}`],
      { env, stdio: 'ignore', timeout: 60_000 }) } catch { /* none */ }
    // podman-compose 1.0's `down` leaves the project's network and volumes behind.
    for (const args of [['network', 'rm', '-f', `${project}_default`], ['volume', 'rm', '-f', `${project}_redis-data`]]) {
      try { execFileSync('podman', args, { env, stdio: 'ignore', timeout: 60_000 }) } catch { /* gone */ }
    }
  }
  const removeExitHook = onExit(() => { down() }, { alwaysLast: true })
  t.teardown(async () => {
    down()
    removeExitHook()
    await rm(dir, { recursive: true, force: true })
  })

  try {
    await compose(['up', '-d'])
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string }
    t.fail(`podman-compose up: ${(e.stderr ?? String(err)).slice(-2_000)}`)
    return
  }
  const gatewayUrl = `http://127.0.0.1:${port}`
  try {
    await waitFor(() => redisUp(gatewayUrl),
      'the compose gateway up on its published port and connected to Redis (readiness ignores Redis)', 180_000)
  } catch (err) {
    const logs = await compose(['logs'], 60_000).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '', stderr: '' }))
    t.fail(`${String(err)}\n${logs.stdout.slice(-4_000)}`)
    return
  }
  const ps = await podman(['ps', '--filter', `label=io.podman.compose.project=${project}`, '--format', '{{.Names}}'])
  t.equal(ps.stdout.trim().split('\n').filter(Boolean).length, 4, `four containers: ${ps.stdout.trim().replace(/\n/g, ', ')}`)

  const login = await httpRequest(gatewayUrl, 'POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(login.status, 200, `alice logs in through the compose stack: ${login.text.slice(0, 200)}`)
  const access = (login.body as { access: string }).access
  const orders = await httpRequest(gatewayUrl, 'GET', '/api/orders', { token: access })
  t.equal(orders.status, 200, `a proxied call reaches the orders service on the compose network: ${orders.text.slice(0, 200)}`)
  const jwks = await httpRequest<{ keys: Array<{ kid: string }> }>(gatewayUrl, 'GET', '/.well-known/jwks.json')
  t.same(jwks.body.keys.map((k) => k.kid), [jwk.kid], 'the gateway signs with ./keys/jwks.json')
})
