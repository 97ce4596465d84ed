/**
 * The two proxy paths (docs/proxy-paths.md) give the same answers: a gateway with the direct GET
 * path (PROXY_DIRECT_GET=true, the default) and one without it (false: every request through
 * @fastify/reply-from), on one Redis and one signing key, are sent the same requests, and the
 * client's status, response headers and body, and what the upstream received, must be identical.
 * Both upstreams (users and orders), GET, HEAD and POST, successes, upstream errors, timeouts and
 * an upstream that is gone. The upstreams are processes: the built users and orders services,
 * and test/fixtures/parity-upstream.mjs, which answers with every kind of answer the paths could
 * treat differently. Real HTTP throughout, read with node:http so every header line counts.
 */
import t, { type Test } from 'tap'
import { request as httpRequest } from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, type Harness } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { freePort, waitFor } from '../helpers/redis-server.js'
import { ensureBuilt, start, stop, waitUntilAnswering, type Proc } from '../helpers/processes.js'

interface Teardown { teardown: (fn: () => unknown) => void }

interface Answer {
  status: number
  /** Every header line but Date, as `name: value` (names in lower case), sorted. */
  headers: string[]
  body: string
}

/** Values that differ from call to call whatever the path: the shared per-user counter's state. */
const VARYING = new Set(['x-ratelimit-remaining', 'x-ratelimit-reset'])

function call (base: string, method: string, path: string, opts: { token?: string, body?: string, id: string }): Promise<Answer> {
  const { hostname, port } = new URL(base)
  const headers: Record<string, string> = {
    'x-request-id': opts.id,
    'x-custom': 'kept',
    'x-user-id': 'forged',
    connection: 'close, x-drop',
    'x-drop': 'dropped'
  }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(opts.body))
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port: Number(port), method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const lines: string[] = []
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i]!.toLowerCase()
          if (name === 'date') continue
          lines.push(`${name}: ${VARYING.has(name) ? '*' : res.rawHeaders[i + 1]!}`)
        }
        resolve({ status: res.statusCode!, headers: lines.sort(), body: Buffer.concat(chunks).toString('utf8') })
      })
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** A process started by test/helpers/processes.ts that prints {"port": N} first. */
async function startFixture (t: Teardown): Promise<string> {
  const proc = start('parity-upstream', 'test/fixtures/parity-upstream.mjs', {})
  t.teardown(() => stop(proc))
  await waitFor(() => /"port":\d+/.test(proc.output()), 'the parity upstream\'s port')
  const url = `http://127.0.0.1:${(JSON.parse(proc.output().split('\n')[0]!) as { port: number }).port}`
  await waitUntilAnswering(proc, url + '/healthz')
  return url
}

/** Two gateways, direct path on and off, on one Redis and one key ring. */
async function twoGateways (t: Teardown, env: Record<string, string>): Promise<{ direct: Harness, replyFrom: Harness }> {
  const direct = await build(t, { env: { ...RELAXED_LIMITS, ...env, PROXY_DIRECT_GET: 'true' } })
  const replyFrom = await build(
    t,
    { env: { ...RELAXED_LIMITS, ...env, PROXY_DIRECT_GET: 'false' }, redis: direct.redis, keyRing: direct.keyRing }
  )
  return { direct, replyFrom }
}

interface Case { method: 'GET' | 'HEAD' | 'POST', path: string, token?: string, body?: string }

let ids = 0
/** Sends `c` to both gateways (same request id) and checks the answers are identical; returns the direct gateway's. */
async function same (t: Test, gw: { direct: Harness, replyFrom: Harness }, c: Case, mask?: (a: Answer) => Answer): Promise<Answer> {
  const id = `parity-${++ids}`
  const opts = { id, ...(c.token !== undefined ? { token: c.token } : {}), ...(c.body !== undefined ? { body: c.body } : {}) }
  const [a, raw] = await Promise.all([call(gw.direct.url, c.method, c.path, opts), call(gw.replyFrom.url, c.method, c.path, opts)])
  // The one difference by design: each gateway's own address, echoed as X-Forwarded-Host.
  const b = { ...raw, body: raw.body.replaceAll(new URL(gw.replyFrom.url).host, new URL(gw.direct.url).host) }
  const view = mask ?? ((x: Answer) => x)
  t.same(view(a), view(b), `${c.method} ${c.path}: status, headers and body identical on both paths`)
  return a
}

const header = (a: Answer, name: string): string[] =>
  a.headers.filter((l) => l.startsWith(name + ': ')).map((l) => l.slice(name.length + 2))

t.test('every kind of upstream answer on the orders upstream, GET, HEAD and POST', async (t) => {
  const fixture = await startFixture(t)
  const dir = mkdtempSync(join(tmpdir(), 'gw-parity-'))
  const routesFile = join(dir, 'routes.yaml')
  // The orders upstream on the fixture (the users upstream is the identity backend, USERS_URL:
  // its parity is checked with the users service below).
  writeFileSync(routesFile, [
    'upstreams:',
    '  users: { url: "${USERS_URL}" }',
    `  orders: { url: "${fixture}" }`,
    'routes:',
    '  - { path: /api/orders/p, upstream: orders }',
    ''
  ].join('\n'))
  const gw = await twoGateways(t, { ROUTES_FILE: routesFile, UPSTREAM_TIMEOUT_MS: '2000' })
  // One session, valid on both gateways (one Redis, one key ring).
  const { access } = await gw.direct.login('alice')

  for (const prefix of ['/api/orders/p']) {
    for (const kind of [
      'small',
      'large',
      'chunked',
      'untyped',
      'empty',
      'not-modified',
      'redirect',
      'error',
      'busy',
      'missing',
      'echo?q=1&q=2'
    ]) {
      for (const method of ['GET', 'HEAD', 'POST'] as const) {
        const answer = await same(
          t,
          gw,
          { method, path: `${prefix}/${kind}`, token: access, ...(method === 'POST' ? { body: '{"n":1}' } : {}) }
        )
        if (kind === 'small') {
          t.same(header(answer, 'set-cookie'), ['theme=dark; Path=/'], `${method} ${prefix}: the gateway's own cookie never passes`)
          t.same(header(answer, 'x-request-id'), [`parity-${ids}`], 'the gateway\'s request id, not the upstream\'s')
          t.same(header(answer, 'x-hop'), [], 'a header the upstream\'s Connection names is dropped')
          t.same(header(answer, 'x-user-state-changed'), [], 'the users service\'s change mark stays at the gateway')
          t.same(header(answer, 'x-frame-options'), ['DENY'], 'the gateway\'s security headers win')
          t.same(header(answer, 'x-upstream'), ['kept'], 'other headers pass')
        }
        if (kind.startsWith('echo') && method !== 'HEAD') {
          const seen = JSON.parse(answer.body) as {
            method: string,
            url: string,
            headers: Record<string, string>,
            assertion: boolean,
            body: string
          }
          t.equal(seen.method, method)
          t.equal(seen.url, `${prefix}/echo?q=1&q=2`, 'path and query reach the upstream unchanged')
          t.equal(seen.headers['x-user-id'], '1001', 'a forged identity header is replaced')
          t.equal(seen.headers.authorization, undefined, 'the client\'s credentials stay at the gateway')
          t.equal(seen.headers['x-drop'], undefined, 'a header the client\'s Connection names is dropped')
          t.equal(seen.headers['x-custom'], 'kept')
          t.ok(seen.assertion, 'the identity assertion is sent')
          t.equal(seen.body, method === 'POST' ? '{"n":1}' : '', 'the body arrives whole')
        }
      }
    }
  }

  // Upstream failures: the deadline (504) and a dropped connection (502), every method.
  for (const prefix of ['/api/orders/p']) {
    for (const method of ['GET', 'HEAD', 'POST'] as const) {
      const body = method === 'POST' ? { body: '{}' } : {}
      const timedOut = await same(t, gw, { method, path: `${prefix}/hang`, token: access, ...body })
      t.equal(timedOut.status, 504, `${method} ${prefix}/hang: 504 on both paths`)
      const dropped = await same(t, gw, { method, path: `${prefix}/drop`, token: access, ...body })
      t.equal(dropped.status, 502, `${method} ${prefix}/drop: 502 on both paths`)
    }
  }
})

t.test('the users and orders services as processes: answers, a stopped upstream, a gone one', async (t) => {
  ensureBuilt()
  const [usersPort, ordersPort] = [await freePort(), await freePort()]
  const usersUrl = `http://127.0.0.1:${usersPort}`
  const ordersUrl = `http://127.0.0.1:${ordersPort}`
  const gw = await twoGateways(t, { USERS_URL: usersUrl, ORDERS_URL: ordersUrl, UPSTREAM_TIMEOUT_MS: '2000' })
  // The services check assertions with the key ring both gateways share, from the first one's JWKS.
  const stubEnv = { HOST: '127.0.0.1', GATEWAY_JWKS_URL: `${gw.direct.url}/.well-known/jwks.json`, LOG_LEVEL: 'warn' }
  const users = start('users', 'dist/services/users/server.js', { ...stubEnv, USERS_PORT: String(usersPort) })
  const orders = start('orders', 'dist/services/orders/server.js', { ...stubEnv, ORDERS_PORT: String(ordersPort) })
  const procs: Proc[] = [users, orders]
  t.teardown(async () => {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGCONT')
      await stop(p)
    }
  })
  await waitUntilAnswering(users, `${usersUrl}/healthz`)
  await waitUntilAnswering(orders, `${ordersUrl}/healthz`)

  const alice = (await gw.direct.login('alice', 'alice-password')).access
  const admin = (await gw.direct.login('admin', 'admin-password')).access

  const cases: Case[] = [
    { method: 'GET', path: '/api/users/me', token: alice },
    { method: 'HEAD', path: '/api/users/me', token: alice },
    { method: 'GET', path: '/api/users/9999', token: admin },
    {
      method: 'POST',
      path: '/api/users/me/password',
      token: alice,
      body: '{"current_password":"wrong-password","new_password":"another-password-1"}'
    },
    { method: 'GET', path: '/api/orders', token: alice },
    { method: 'HEAD', path: '/api/orders', token: alice },
    { method: 'GET', path: '/api/orders/no-such-order', token: alice },
    { method: 'POST', path: '/api/orders', token: alice, body: '{"quantity":0}' }
  ]
  for (const c of cases) await same(t, gw, c)

  // A created order has its own id and time on each gateway: the rest must match.
  const masked = (a: Answer): Answer => {
    const { id: _id, created_at: _c, ...rest } = JSON.parse(a.body) as Record<string, unknown>
    return { ...a, headers: a.headers.filter((l) => !l.startsWith('content-length: ')), body: JSON.stringify(rest) }
  }
  const created = await same(t, gw, { method: 'POST', path: '/api/orders', token: alice, body: '{"item":"book","quantity":2}' }, masked)
  t.equal(created.status, 201)

  // A stopped upstream (SIGSTOP: connections open, nothing answers): the deadline on both paths.
  for (const [proc, path] of [[users, '/api/users/me'], [orders, '/api/orders']] as const) {
    proc.child.kill('SIGSTOP')
    const post: Case = path === '/api/orders'
      ? { method: 'POST', path, token: alice, body: '{"item":"book"}' }
      : { method: 'POST', path: '/api/users/me/password', token: alice, body: '{}' }
    for (const c of [{ method: 'GET', path, token: alice }, { method: 'HEAD', path, token: alice }, post] as Case[]) {
      const answer = await same(t, gw, c)
      t.equal(answer.status, 504, `${c.method} ${c.path} to a stopped ${proc.name}: 504`)
    }
    proc.child.kill('SIGCONT')
  }

  // Gone (stopped for good): 502 on both paths.
  for (const proc of [users, orders]) await stop(proc)
  for (const c of [
    { method: 'GET', path: '/api/users/me', token: alice },
    { method: 'HEAD', path: '/api/orders', token: alice },
    { method: 'GET', path: '/api/orders', token: alice },
    { method: 'POST', path: '/api/orders', token: alice, body: '{"item":"book"}' }
  ] as Case[]) {
    const answer = await same(t, gw, c)
    t.equal(answer.status, 502, `${c.method} ${c.path} to a gone upstream: 502`)
  }
})
