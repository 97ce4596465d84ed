/**
 * `make run` (scripts/dev-stack.sh) shows a real service-to-service call on a user's behalf: it
 * registers the orders service's machine client (scope `token-exchange`) as the demo admin and
 * starts the orders stub with ORDERS_CLIENT_ID / ORDERS_CLIENT_SECRET; an order then records the
 * username of the profile the stub read through the gateway by token exchange, and the exchange is
 * in the audit trail under the user's request id, made by that client.
 */
import t from 'tap'
import { type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startRedis, waitFor } from '../helpers/redis-server.js'
import { ROOT, ensureBuilt, answers } from '../helpers/processes.js'
import { exitOf, killGroup, spawnTracked } from '../../dev-tools/child-processes.js'
import { generatePrivateJwk } from '../../src/tokens/key-ring.js'

function collect (child: ChildProcess): () => string {
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
  return () => out
}

async function post (url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() }
}

t.test('make run: the orders stub exchanges the caller\'s token with the client the stack registered', async (t) => {
  ensureBuilt()
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const dir = await mkdtemp(join(tmpdir(), 'gw-dev-stack-orders-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keys = join(dir, 'jwks.json')
  await writeFile(keys, JSON.stringify({ keys: [await generatePrivateJwk()] }), { mode: 0o600 })
  const [port, ordersPort] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${port}`
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: redis.url, JWT_KEYS_FILE: keys, PORT: String(port),
    USERS_PORT: String(await freePort()), ORDERS_PORT: String(ordersPort), LOG_FORMAT: 'json', LOG_LEVEL: 'warn' }
  delete env.ORDERS_CLIENT_ID
  delete env.ORDERS_CLIENT_SECRET

  const child = spawnTracked('bash', ['scripts/dev-stack.sh'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }, false)
  t.teardown(() => killGroup(child))
  const output = collect(child)
  const registered = /orders: machine client (\S+) \(scope token-exchange\)/
  await waitFor(() => registered.test(output()), 'the stack to register the orders client', 60_000)
  const clientId = registered.exec(output())![1]!
  await waitFor(() => answers(`http://127.0.0.1:${ordersPort}/healthz`), 'the orders stub', 30_000)

  const alice = await post(`${url}/auth/login`, { username: 'alice', password: 'alice-password' })
  t.equal(alice.status, 200, 'alice signs in')
  const order = await post(`${url}/api/orders`, { item: 'book' },
    { authorization: `Bearer ${alice.body.access as string}`, 'x-request-id': 'make-run-order-1' })
  t.equal(order.status, 201, 'the order is created')
  t.equal(order.body.username, 'alice', 'it records the profile\'s username, read through the gateway on alice\'s behalf')

  const admin = await post(`${url}/auth/login`, { username: 'admin', password: 'admin-password' })
  const auth = { authorization: `Bearer ${admin.body.access as string}` }
  const clients = await (await fetch(`${url}/admin/clients`, { headers: auth })).json() as { clients: Array<Record<string, unknown>> }
  t.match(clients.clients.find((c) => c.client_id === clientId), { scopes: ['token-exchange'] },
    'the registered client holds token-exchange only')
  let events: Array<Record<string, unknown>> = []
  await waitFor(async () => {
    const res = await fetch(`${url}/admin/events?event=token_exchanged`, { headers: auth })
    events = (await res.json() as { events: Array<Record<string, unknown>> }).events
    return events.some((e) => e.request_id === 'make-run-order-1')
  }, 'the token_exchanged event of the order')
  t.match(events.find((e) => e.request_id === 'make-run-order-1'),
    { user_id: alice.body.user.id, client_id: clientId, audience: 'users' },
    'the exchange is in the audit trail under alice\'s request id, made by the orders client')

  child.kill('SIGINT')
  await exitOf(child)
  await waitFor(async () => !(await answers(`${url}/healthz`)), 'the stack stopped')
})
