/**
 * The Kubernetes manifests run with `podman kube play`: the base rendered by kustomize through the
 * kube-play overlay (deploy/overlays/kube-play: one pod per Deployment, each at a fixed address on
 * a podman network made here, the Service names as host aliases, ports published on 127.0.0.1,
 * Redis as a Deployment of the local Redis image), with the real image. The gateway,
 * the two stubs and Redis come up from the rendered YAML alone, including its ConfigMaps, the keys
 * file mounted from a volume, the security contexts and the commands; a login and a proxied
 * call go through; `podman kube down` removes it all, also when the test fails. What podman does
 * not run (Services, HPA, PDB, NetworkPolicies, probes as Kubernetes uses them) is listed in
 * deploy/README.md.
 */
import t from 'tap'
import { execFile, execFileSync } from 'node:child_process'
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { onExit } from 'signal-exit'
import { parseAllDocuments } from 'yaml'
import { httpRequest } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { ROOT, answers } from '../helpers/processes.js'
import { GATEWAY_IMAGE, PODMAN_ENV, REDIS_IMAGE, imageExists, podman } from '../helpers/podman.js'
import { generatePrivateJwk } from '../../src/tokens/key-ring.js'
import { redisUp } from '../helpers/metrics.js'

const run = promisify(execFile)

/** The image name, the pod network and the published ports of the overlay (deploy/overlays/kube-play). */
const KUBE_PLAY_IMAGE = 'localhost/auth-gateway:kube-play'
const SUBNET = '10.250.77.0/24'
const PORTS = { gateway: 18080, users: 13001, orders: 13002, redis: 16379 }

interface Workload { kind: string, metadata: { name: string },
  spec?: { template?: { spec?: { hostAliases?: Array<{ ip: string, hostnames: string[] }> } } } }

function portFree (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

t.test('the kustomize base runs under podman kube play', async (t) => {
  t.ok(await imageExists(GATEWAY_IMAGE), `${GATEWAY_IMAGE} exists (make image builds it)`)
  t.ok(await imageExists(REDIS_IMAGE), `${REDIS_IMAGE} exists (make image builds it)`)
  t.equal((await podman(['tag', GATEWAY_IMAGE, KUBE_PLAY_IMAGE])).code, 0, `tagged as ${KUBE_PLAY_IMAGE}`)
  for (const [name, port] of Object.entries(PORTS)) t.ok(await portFree(port), `port ${port} (${name}) is free on 127.0.0.1`)

  // deploy/ copied as it is, with a private JWKS where the overlay's secretGenerator expects it.
  const dir = await mkdtemp(join(tmpdir(), 'gw-kube-play-'))
  await cp(join(ROOT, 'deploy'), join(dir, 'deploy'), { recursive: true })
  const overlay = join(dir, 'deploy/overlays/kube-play')
  await mkdir(join(overlay, 'keys'), { recursive: true })
  const jwk = await generatePrivateJwk()
  await writeFile(join(overlay, 'keys/jwks.json'), JSON.stringify({ keys: [jwk] }))
  await chmod(join(overlay, 'keys/jwks.json'), 0o644)

  // `kubectl kustomize` (kubectl's built-in kustomize), else a standalone `kustomize build`.
  const rendered = (await run('kubectl', ['kustomize', overlay], { maxBuffer: 16 * 1024 * 1024 })
    .catch(async () => await run('kustomize', ['build', overlay], { maxBuffer: 16 * 1024 * 1024 }))).stdout
  const manifest = join(dir, 'kube-play.yaml')
  await writeFile(manifest, rendered)
  const objects = parseAllDocuments(rendered).map((d) => d.toJSON() as Workload)
  const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`)
  for (const expected of ['Deployment/gateway', 'Deployment/users', 'Deployment/orders', 'Deployment/redis', 'ConfigMap/gateway-config',
    'ConfigMap/stubs-config', 'Secret/gateway-redis', 'Service/gateway', 'HorizontalPodAutoscaler/gateway',
      'PodDisruptionBudget/gateway']) {
    t.ok(kinds.includes(expected), `the rendered base has ${expected}`)
  }
  t.ok(kinds.some((k) => k.startsWith('Secret/gateway-jwt-keys-')), 'and the generated keys Secret (hash-suffixed name)')
  t.ok(kinds.some((k) => k.startsWith('ConfigMap/gateway-jwt-keys-file-')),
    'which podman gets as a ConfigMap (podman 4.3 writes secret volumes undecoded)')

  // Each pod's address is the one the host aliases give its Service name; podman assigns the
  // `--ip`s to the pods in the order of the Deployments in the YAML.
  const deployments = objects.filter((o) => o.kind === 'Deployment')
  const aliases = deployments[0]?.spec?.template?.spec?.hostAliases ?? []
  const ips = deployments.map((d) => aliases.find((a) => a.hostnames.includes(d.metadata.name))?.ip)
  t.ok(ips.every((ip) => ip !== undefined),
    `every Deployment has a host alias: ${deployments.map((d, i) => `${d.metadata.name}=${ips[i] ?? '?'}`).join(', ')}`)
  const network = `agw-kube-play-${process.pid}`
  // podman 4.3 turns the Secrets into podman secrets and the ConfigMap volumes into named volumes,
  // of the same names, and leaves them behind on `kube down`: removed here before and after.
  const named = (kind: string): string[] => objects.filter((o) => o.kind === kind).map((o) => o.metadata.name)
  const removeSecrets = (): void => {
    for (const name of named('Secret')) {
      try { execFileSync('podman', ['secret', 'rm', name], { env: PODMAN_ENV, stdio: 'ignore', timeout: 60_000 }) } catch { /* none */ }
    }
    for (const name of named('ConfigMap')) {
      try { execFileSync('podman', ['volume', 'rm', '-f', name],
        { env: PODMAN_ENV, stdio: 'ignore', timeout: 60_000 }) } catch { /* none */ }
    }
  }

  const down = (): void => {
    try { execFileSync('podman', ['kube', 'down', manifest],
      { env: PODMAN_ENV, stdio: 'ignore', timeout: 120_000 }) } catch { /* already down */ }
    try { execFileSync('podman', ['network', 'rm', '-f', network],
      { env: PODMAN_ENV, stdio: 'ignore', timeout: 60_000 }) } catch { /* gone */ }
    removeSecrets()
  }
  const removeExitHook = onExit(() => { down() }, { alwaysLast: true })
  t.teardown(async () => {
    down()
    removeExitHook()
    await rm(dir, { recursive: true, force: true })
  })

  removeSecrets()
  const created = await podman(['network', 'create', '--subnet', SUBNET, network])
  t.equal(created.code, 0, `podman network ${network} (${SUBNET}): ${created.stderr.slice(-500)}`)
  if (created.code !== 0) return
  const play = await podman(['kube', 'play', '--network', network, ...ips.flatMap((ip) => ['--ip', ip!]), manifest], 300_000)
  t.equal(play.code, 0, `podman kube play: ${(play.stderr || play.stdout).slice(-2_000)}`)
  if (play.code !== 0) return
  const pods = await podman(['pod', 'ps', '--format', '{{.Name}} {{.Status}}'])
  for (const name of ['gateway', 'users', 'orders', 'redis']) t.match(pods.stdout, new RegExp(`^${name}-pod`, 'm'), `a ${name} pod`)

  const gatewayUrl = `http://127.0.0.1:${PORTS.gateway}`
  try {
    await waitFor(() => redisUp(gatewayUrl), 'the kube-play gateway up and connected to Redis (readiness ignores Redis)', 180_000)
    // The pods start one after the other: the stubs too, on their published ports.
    await waitFor(() => answers(`http://127.0.0.1:${PORTS.users}/healthz`), 'the users pod', 180_000)
    await waitFor(() => answers(`http://127.0.0.1:${PORTS.orders}/healthz`), 'the orders pod', 180_000)
  } catch (err) {
    const logs = await podman(['pod', 'logs', '--tail', '40', 'gateway-pod-0'])
    t.fail(`${String(err)}\n${logs.stdout.slice(-4_000)}${logs.stderr.slice(-2_000)}`)
    return
  }
  const login = await httpRequest(gatewayUrl, 'POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
  t.equal(login.status, 200, `alice logs in through the played manifests: ${login.text.slice(0, 200)}`)
  const access = (login.body as { access: string }).access
  const orders = await httpRequest(gatewayUrl, 'GET', '/api/orders', { token: access })
  t.equal(orders.status, 200,
    `a proxied call reaches the orders pod, whose assertion check fetched the gateway's JWKS: ${orders.text.slice(0, 200)}`)
  const jwks = await httpRequest<{ keys: Array<{ kid: string }> }>(gatewayUrl, 'GET', '/.well-known/jwks.json')
  t.same(jwks.body.keys.map((k) => k.kid), [jwk.kid], 'the gateway signs with the key of the generated keys file')

  // The security context of the manifests holds in the running containers.
  const inspect = await podman(['inspect', '--format', '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}', 'gateway-pod-0-gateway'])
  t.match(inspect.stdout.trim(), /^1000(:1000)? true$/,
    `the gateway runs as uid 1000 on a read-only root filesystem (${inspect.stdout.trim()})`)

  const downResult = await podman(['kube', 'down', manifest], 120_000)
  t.equal(downResult.code, 0, `podman kube down: ${downResult.stderr.slice(-500)}`)
  const left = await podman(['pod', 'ps', '--format', '{{.Name}}'])
  for (const name of ['gateway', 'users', 'orders', 'redis']) t.notMatch(left.stdout, new RegExp(`^${name}-pod-0$`, 'm'),
    `no ${name} pod left`)
  t.notOk(await answers(`${gatewayUrl}/healthz`), 'the gateway is gone')
})
