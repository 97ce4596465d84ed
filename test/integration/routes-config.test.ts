/**
 * Routes and upstreams as configuration (ROUTES_FILE): a third service, started here as a plain
 * node:http server, put behind the gateway by a routes file alone; public, role- and scope-protected
 * routes on it; no method fallback; its own timeout; per-route body limits, bodies streamed; live
 * reload while requests run (file change, Kubernetes' `..data` symlink swap, an invalid file kept
 * out), the `routes_reloaded` event and metric; and 1,000 reloads leaving nothing behind.
 */
import t, { type Test } from 'tap'
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http'
import { chmod, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { build, type Harness } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { freePort, waitFor } from '../helpers/redis-server.js'
import { clientToken, registerClient } from '../helpers/machine-clients.js'
import { captureLogLines } from '../helpers/log-capture.js'
import { REDACTED_PATHS } from '../../src/server-options.js'
import { ensureBuilt, start, stop, waitUntilAnswering } from '../helpers/processes.js'
import { startTestRedis } from '../helpers/redis-cluster.js'
import { makeTestOnly } from '../helpers/tiers.js'

const MiB = 1024 * 1024

interface Seen { method: string, url: string, headers: IncomingHttpHeaders, bytes: number }

/**
 * The team's service: records what arrives (the body only counted, never kept) and answers JSON.
 * A path containing `/held` waits for `release()`.
 */
async function startBilling (t: Test): Promise<{ url: string, seen: Seen[], server: Server, release: () => void }> {
  const seen: Seen[] = []
  const held: Array<() => void> = []
  const server = createServer((req, res) => {
    const entry: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes: 0 }
    seen.push(entry)
    req.on('data', (chunk: Buffer) => { entry.bytes += chunk.length })
    req.on('end', () => {
      const answer = (): void => { res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({ service: 'billing', bytes: entry.bytes })) }
      if (req.url?.startsWith('/api/billing/slow') === true) setTimeout(answer, 3_000).unref()
      else if (req.url?.includes('/held') === true) held.push(answer)
      else answer()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const release = (): void => { for (const answer of held.splice(0)) answer() }
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen, server, release }
}

/** Sends `size` bytes (in 64 KiB writes, chunked when asked) and resolves with the status. */
function upload (baseUrl: string, path: string, size: number,
  opts: { token?: string, chunked?: boolean } = {}): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' }
    if (opts.chunked !== true) headers['content-length'] = String(size)
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
    const req = httpRequest(baseUrl + path, { method: 'POST', headers })
    let answered = false
    req.on('response', (res) => {
      answered = true
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    // The gateway may answer 413 and close while the body is still being sent.
    req.on('error', (err) => { if (!answered) reject(err) })
    const chunk = Buffer.alloc(64 * 1024, 0x61)
    let sent = 0
    const next = (): void => {
      if (answered || req.destroyed) return
      if (sent >= size) { req.end(); return }
      const n = Math.min(chunk.length, size - sent)
      sent += n
      req.write(n === chunk.length ? chunk : chunk.subarray(0, n), next)
    }
    next()
  })
}

const file = (billingUrl: string, extraRoutes: string[] = [], opts: { admin?: boolean } = {}): string => [
  'upstreams:',
  '  users: { url: "${USERS_URL}" }',
  '  orders: { url: "${ORDERS_URL}" }',
  '  billing: { url: "${BILLING_URL}", timeout_ms: 30000 }',
  // The same service under another name with a short timeout: one pool, two timeouts.
  '  billing-fast: { url: "${BILLING_URL}", timeout_ms: 500 }',
  'routes:',
  // Listed shortest first on purpose: the file's order does not matter.
  '  - { path: /api/billing, upstream: billing }',
  '  - { path: /api/orders, upstream: orders, scopes: { GET: [orders:read], POST: [orders:write] } }',
  '  - { path: /api/users, upstream: users, roles: [admin] }',
  '  - { path: /api/users/me, exact: true, upstream: users, methods: [GET, HEAD] }',
  '  - { path: /api/billing/status, exact: true, upstream: billing, public: true }',
  ...(opts.admin !== false ? ['  - { path: /api/billing/admin, upstream: billing, roles: [admin] }'] : []),
  '  - { path: /api/billing/invoices, upstream: billing, methods: [GET], scopes: { GET: [billing:read] } }',
  '  - { path: /api/billing/upload, upstream: billing, methods: [POST], body_limit: 5242880 }',
  '  - { path: /api/billing/slow, upstream: billing-fast }',
  ...extraRoutes,
  ''
].join('\n').replaceAll('${BILLING_URL}', billingUrl === '' ? '${BILLING_URL}' : billingUrl)

interface Setup { h: Harness, billing: Awaited<ReturnType<typeof startBilling>>, routesFile: string, dir: string, lines: string[] }

async function setup (t: Test, opts: { logger?: boolean } = {}): Promise<Setup> {
  const billing = await startBilling(t)
  const dir = await mkdtemp(join(tmpdir(), 'gw-routes-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const routesFile = join(dir, 'routes.yaml')
  await writeFile(routesFile, file(''), { mode: 0o644 })
  const { stream, lines } = captureLogLines()
  const h = await build(t, {
    env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '100000', ROUTES_FILE: routesFile, BILLING_URL: billing.url },
    ...(opts.logger === true ? { logger: { level: 'info', stream, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } } } : {})
  })
  return { h, billing, routesFile, dir, lines }
}

t.test('a third service behind the gateway by configuration alone', async (t) => {
  const { h, billing } = await setup(t)
  const jwks = createLocalJWKSet(h.keyRing.publicJwks)
  const alice = await h.login('alice')
  const admin = await h.login('admin')
  const last = (): Seen => billing.seen.at(-1)!

  t.test('public route: no token needed, and no identity travels', async (t) => {
    const res = await h.request('GET', '/api/billing/status',
      { token: alice.access, headers: { 'x-user-id': '1003', 'x-gateway-assertion': 'forged' } })
    t.equal(res.status, 200)
    t.equal(res.body.service, 'billing')
    const got = last()
    t.equal(got.url, '/api/billing/status')
    for (const name of ['authorization', 'x-user-id', 'x-user-name', 'x-user-roles', 'x-gateway-assertion', 'cookie']) t.equal(
      got.headers[name], undefined, `no ${name}`)
    t.equal((await h.request('GET', '/api/billing/status')).status, 200, 'anonymous')
    t.equal((await h.request('GET', '/api/billing/status/x')).status, 401,
      'exact: a path below it is the prefix route, which needs a token')
  })

  t.test('role-protected route: admin only; the assertion is addressed to billing', async (t) => {
    t.equal((await h.request('GET', '/api/billing/admin/report')).status, 401)
    const n = billing.seen.length
    t.equal((await h.request('GET', '/api/billing/admin/report', { token: alice.access })).status, 403)
    t.equal(billing.seen.length, n, 'refused requests never reach the service')
    const res = await h.request('GET', '/api/billing/admin/report?x=1', { token: admin.access })
    t.equal(res.status, 200)
    const got = last()
    t.equal(got.url, '/api/billing/admin/report?x=1')
    t.equal(got.headers['x-user-name'], 'admin')
    const { payload } = await jwtVerify(String(got.headers['x-gateway-assertion']), jwks,
      { audience: 'billing', issuer: h.config.jwt.issuer })
    t.equal(payload.aud, 'billing', 'aud is the upstream name of the routes file')
    t.same(payload.roles, ['admin'])
  })

  t.test('scope-protected route: machine clients by scope; no method fallback', async (t) => {
    const reader = await registerClient(h.url, admin.access, ['billing:read'], 'billing reader')
    const other = await registerClient(h.url, admin.access, ['orders:read'], 'orders reader')
    const readerToken = await clientToken(h.url, reader)
    const otherToken = await clientToken(h.url, other)
    t.equal((await h.request('GET', '/api/billing/invoices/7', { token: readerToken })).status, 200)
    const got = last()
    t.equal(got.headers['x-client-id'], reader.client_id)
    const { payload } = await jwtVerify(String(got.headers['x-gateway-assertion']), jwks, { audience: 'billing' })
    t.equal(payload.client_id, reader.client_id)
    t.equal((await h.request('GET', '/api/billing/invoices/7', { token: otherToken })).status, 403, 'a client without the scope')
    t.equal((await h.request('GET', '/api/billing/other', { token: readerToken })).status, 403,
      'a route without scopes is closed to clients')
    t.equal((await h.request('GET', '/api/billing/invoices', { token: alice.access })).status, 200, 'users are not affected by scopes')
    const n = billing.seen.length
    const post = await h.request('POST', '/api/billing/invoices', { token: alice.access, body: {} })
    t.equal(post.status, 404, 'a method the route does not list is 404, not the shorter /api/billing route')
    t.equal(post.body.code, 'not_found')
    t.equal(billing.seen.length, n, 'no upstream contacted')
    t.equal((await h.request('POST', '/api/billing/other', { token: alice.access, body: {} })).status, 200,
      'the shorter route allows POST for its own paths')
    t.equal((await h.request('GET', '/api/billingx', { token: alice.access })).status, 404, 'whole segments only')
  })

  t.test('the demo routes still work from the same file', async (t) => {
    t.equal((await h.request('GET', '/api/users/me', { token: alice.access })).status, 200)
    t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 200)
    t.equal((await h.request('GET', '/api/users', { token: alice.access })).status, 403)
  })

  t.test('the upstream\'s own timeout_ms: 504 upstream_timeout', async (t) => {
    const res = await h.request('GET', '/api/billing/slow', { token: alice.access })
    t.equal(res.status, 504, 'billing-fast waits 500 ms')
    t.equal(res.body.code, 'upstream_timeout')
    t.equal((await h.request('GET', '/api/billing/other', { token: alice.access })).status, 200,
      'billing, on the same pool, is not affected')
  })

  t.test('body limits per route: 1 MiB by default, 5 MiB on the upload route, streamed', async (t) => {
    const n = billing.seen.length
    t.equal((await upload(h.url, '/api/billing/docs', MiB, { token: alice.access })).status, 200, '1 MiB on a default route')
    t.equal(last().bytes, MiB, 'the whole body arrived')
    const over = await upload(h.url, '/api/billing/docs', MiB + 1, { token: alice.access })
    t.equal(over.status, 413, '1 MiB + 1 byte on a default route')
    t.match(over.body, /payload_too_large/)
    t.equal((await upload(h.url, '/api/billing/upload', 5 * MiB, { token: alice.access })).status, 200, '5 MiB on the upload route')
    t.equal(last().bytes, 5 * MiB)
    t.equal((await upload(h.url, '/api/billing/upload', 5 * MiB + 1, { token: alice.access })).status, 413, '5 MiB + 1 byte')
    t.equal(billing.seen.length, n + 2, 'a body over the limit by Content-Length never reaches the service')
    t.equal((await upload(h.url, '/api/billing/upload', 3 * MiB, { token: alice.access, chunked: true })).status, 200,
      'chunked within the limit')
    t.equal(last().bytes, 3 * MiB)
    t.equal((await upload(h.url, '/api/billing/upload', 6 * MiB, { token: alice.access, chunked: true })).status, 413,
      'chunked past the limit')
    t.equal((await upload(h.url, '/api/billing/docs', 2 * MiB, { token: alice.access, chunked: true })).status, 413,
      'chunked past the default limit')
  })
})

async function eventsOf (h: Harness, token: string): Promise<any[]> {
  const res = await h.request('GET', '/admin/events?event=routes_reloaded', { token })
  return (res.body.events as any[] | undefined) ?? []
}

function metric (text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

t.test('live reload: on file change, while requests run; an invalid file keeps the table', async (t) => {
  const { h, billing, routesFile, lines } = await setup(t, { logger: true })
  const alice = await h.login('alice')
  const admin = await h.login('admin')
  t.equal((await h.request('GET', '/api/billing/new', { token: alice.access })).status, 200, 'the prefix route')
  t.equal((await h.request('GET', '/api/billing/admin/x', { token: alice.access })).status, 403)

  // Requests keep running through every reload: none may fail.
  let running = true
  const statuses = new Map<number, number>()
  const load = (async () => {
    while (running) {
      const res = await h.request('GET', '/api/orders', { token: alice.access })
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    }
  })()

  // Added: a public route; removed: the admin route.
  const applied = file(billing.url, ['  - { path: /api/billing/new, exact: true, upstream: billing, public: true }'], { admin: false })
  await writeFile(routesFile, applied)
  await waitFor(async () => (await h.request('GET', '/api/billing/new')).status === 200, 'the new public route')
  t.equal((await h.request('GET', '/api/billing/admin/x', { token: alice.access })).status, 200,
    'the admin route is gone: the prefix route decides now')
  const events = await (async () => { let e: any[] = [];
    await waitFor(async () => (e = await eventsOf(h, admin.access)).length === 1, 'the audit event'); return e })()
  const expectedSha = (await import('node:crypto')).createHash('sha256').update(await readFile(routesFile)).digest('hex')
  t.match(events[0], { event: 'routes_reloaded', sha256: expectedSha, added: ['=/api/billing/new'], removed: ['/api/billing/admin'],
    made_public: ['=/api/billing/new'] })
  const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'routes_reloaded')
  t.match(logged, { sha256: expectedSha, added: ['=/api/billing/new'] }, 'the security event in the log')
  t.notOk(lines.some((l) => l.includes(billing.url)), 'the interpolated BILLING_URL is never logged')

  // An invalid file: the table stays, the problem is logged, the failure counted.
  await writeFile(routesFile, file(billing.url, ['  - { path: /api/billing/new, upstream: billing, role: [admin] }']))
  await waitFor(() => lines.some((l) => l.includes('unknown field \\"role\\"')), 'the refusal in the log')
  t.equal((await h.request('GET', '/api/billing/new')).status, 200, 'the previous table stays')
  const refused = await h.gateway.routesControl.reload('signal')
  t.equal(refused.result, 'failure')
  t.match(refused.problems, [/routes\.yaml:\d+: route \/api\/billing\/new: unknown field "role"/])
  for (const bad of [
    file(billing.url, ['  - { path: /api/billing/new, upstream: nobody }']),
    file(billing.url).replace('${ORDERS_URL}', 'ftp://orders'),
    file(billing.url, ['  - { path: /api/billing/admin, upstream: billing }']),
    file(billing.url) + '  - { path: /x, upstream: billing\n',
    file(billing.url).replace('${ORDERS_URL}', '${SECRET}')
  ]) {
    await writeFile(routesFile, bad)
    t.equal((await h.gateway.routesControl.reload('signal')).result, 'failure')
    t.equal((await h.request('GET', '/api/billing/new')).status, 200, 'the previous table stays')
  }
  // Refused on reload as at start-up: a step-up route while second factors are off (no
  // MFA_ENCRYPTION_KEY here), and a file that others may write.
  await writeFile(routesFile, file(billing.url, ['  - { path: /api/billing/new, upstream: billing, step_up_max_age: 300 }']))
  const stepUp = await h.gateway.routesControl.reload('signal')
  t.equal(stepUp.result, 'failure')
  t.match(stepUp.problems, [/route \/api\/billing\/new: step_up_max_age needs second factors \(MFA_ENCRYPTION_KEY is unset\)/])
  t.equal((await h.request('GET', '/api/billing/new')).status, 200, 'the previous table stays')
  // The table in use, but writable by others (and back to 0644 afterwards: `unchanged`).
  await writeFile(routesFile, applied)
  await chmod(routesFile, 0o666)
  const writable = await h.gateway.routesControl.reload('signal')
  t.equal(writable.result, 'failure')
  t.match(writable.problems, [/routes\.yaml: file: writable by group or others/])
  t.equal((await h.request('GET', '/api/billing/new')).status, 200, 'the previous table stays')
  await chmod(routesFile, 0o644)

  const text = (await h.request('GET', '/metrics')).text
  t.equal(metric(text, 'gateway_routes_reloads_total', 'result="success"'), 1)
  t.ok(metric(text, 'gateway_routes_reloads_total', 'result="failure"') >= 8, 'failures counted')

  running = false
  await load
  t.same([...statuses.keys()], [200], `every request during the reloads answered 200 (${JSON.stringify([...statuses])})`)
})

t.test('a request in flight finishes on its table when a reload removes its route and its upstream', async (t) => {
  const { h, billing, routesFile } = await setup(t)
  const moved = await startBilling(t)
  const alice = await h.login('alice')
  const admin = await h.login('admin')
  t.equal((await h.request('GET', '/api/billing/admin/x', { token: alice.access })).status, 403, 'the admin route decides')

  // Admitted on the admin route, and waiting at the service for its answer.
  const inFlight = h.request('GET', '/api/billing/admin/held', { token: admin.access })
  await waitFor(() => billing.seen.some((s) => s.url === '/api/billing/admin/held'), 'the request reached the service')

  // The new table has no admin route, and billing at another origin: the old one's pool is retired.
  await writeFile(routesFile, file(moved.url, [], { admin: false }))
  const { result } = await h.gateway.routesControl.reload('signal')
  t.ok(result === 'success' || result === 'unchanged', `applied (by the signal or the file watch): ${result}`)
  const after = await h.request('GET', '/api/billing/admin/x', { token: alice.access })
  t.equal(after.status, 200, 'the new table decides: the prefix route now')
  t.equal(moved.seen.at(-1)?.url, '/api/billing/admin/x', 'at the new origin')
  const pools = h.gateway.routesControl.pools()
  t.ok(pools.retiring >= 1, `the old origin's pool is retiring: ${JSON.stringify(pools)}`)

  billing.release()
  const done = await inFlight
  t.equal(done.status, 200, 'the request admitted on the old table finished')
  t.equal(done.body.service, 'billing')
  t.notOk(moved.seen.some((s) => s.url === '/api/billing/admin/held'), 'on the upstream it started with')
})

t.test('a Kubernetes ConfigMap update (the ..data symlink swap) is seen', async (t) => {
  const billing = await startBilling(t)
  const dir = await mkdtemp(join(tmpdir(), 'gw-configmap-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // The layout of a ConfigMap volume: routes.yaml -> ..data/routes.yaml, ..data -> ..<timestamp>.
  await mkdir(join(dir, '..2026_01'))
  await writeFile(join(dir, '..2026_01', 'routes.yaml'), file(billing.url), { mode: 0o644 })
  await symlink('..2026_01', join(dir, '..data'))
  await symlink(join('..data', 'routes.yaml'), join(dir, 'routes.yaml'))
  const h = await build(t, { env: { ...RELAXED_LIMITS, ROUTES_FILE: join(dir, 'routes.yaml'), BILLING_URL: billing.url } })
  t.equal((await h.request('GET', '/api/billing/status2')).status, 401)

  await mkdir(join(dir, '..2026_02'))
  await writeFile(join(dir, '..2026_02', 'routes.yaml'),
    file(billing.url, ['  - { path: /api/billing/status2, exact: true, upstream: billing, public: true }']), { mode: 0o644 })
  await symlink('..2026_02', join(dir, '..data_tmp'))
  await rename(join(dir, '..data_tmp'), join(dir, '..data'))
  await waitFor(async () => (await h.request('GET', '/api/billing/status2')).status === 200, 'the new route after the swap')
  t.pass('reloaded after the symlink swap')
})

t.test('1,000 reloads: pools, listeners and heap stay put', makeTestOnly('a soak of 1,000 reloads'), async (t) => {
  const { h, billing, routesFile } = await setup(t)
  const alice = await h.login('alice')
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  // Each table names the service at another origin (localhost / 127.0.0.1), so every reload
  // retires one pool and takes the other back.
  const port = new URL(billing.url).port
  const texts = [file(billing.url), file(`http://localhost:${port}`, ['  - { path: /api/extra, upstream: billing }'])]
  t.equal(texts.length, 2)
  const listeners = (): number => process.listenerCount('SIGHUP') + process.listenerCount('exit')
    + h.gateway.server.listenerCount('request')
  const results = new Map<string, number>()
  const reloadMany = async (n: number, offset: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const which = (i + offset) % 2
      await writeFile(routesFile, texts[which]!)
      // The directory watcher may have applied the same file just before: `unchanged` then.
      const { result } = await h.gateway.routesControl.reload('signal')
      results.set(result, (results.get(result) ?? 0) + 1)
      if (i % 100 === 0 && which === 0) t.equal((await h.request('GET', '/api/billing/x', { token: alice.access })).status, 200,
        `request after reload ${i}`)
    }
  }
  await reloadMany(100, 1)
  gc()
  const heapBefore = process.memoryUsage().heapUsed
  const listenersBefore = listeners()
  await reloadMany(1000, 1)
  t.same([...results.keys()].filter((r) => r !== 'success' && r !== 'unchanged'), [],
    `every reload applied: ${JSON.stringify([...results])}`)
  t.ok(h.gateway.routesControl.pools().live + h.gateway.routesControl.pools().retiring <= 4,
    `pools bounded: ${JSON.stringify(h.gateway.routesControl.pools())}`)
  gc()
  const heapAfter = process.memoryUsage().heapUsed
  t.equal(listeners(), listenersBefore, 'no listener added')
  t.ok(heapAfter - heapBefore < 8 * MiB, `heap grew ${((heapAfter - heapBefore) / MiB).toFixed(1)} MiB over 1,000 reloads`)

  // The table names one origin for billing now: the other's pool is closed once retired.
  await waitFor(() => { const p = h.gateway.routesControl.pools(); return p.retiring === 0 && p.closing === 0 }, 'retired pools closed',
    30_000)
  t.same(h.gateway.routesControl.pools(), { live: 3, retiring: 0, closing: 0 }, 'one pool per origin in use: users, orders, billing')
  t.equal((await h.request('GET', '/api/billing/x', { token: alice.access })).status, 200)
})

t.test('the server process: SIGHUP reloads the file and does not stop the gateway', async (t) => {
  ensureBuilt()
  const billing = await startBilling(t)
  const redis = await startTestRedis()
  t.teardown(() => redis.stop())
  const dir = await mkdtemp(join(tmpdir(), 'gw-sighup-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const routesFile = join(dir, 'routes.yaml')
  await writeFile(routesFile, file(billing.url), { mode: 0o644 })
  const port = await freePort()
  const proc = start('gateway', 'dist/src/server.js', { ...redis.env, PORT: String(port), LOG_LEVEL: 'info', ROUTES_FILE: routesFile })
  t.teardown(() => stop(proc))
  const base = `http://127.0.0.1:${port}`
  await waitUntilAnswering(proc, base + '/readyz', 60_000)
  const status = async (path: string): Promise<number> => (await fetch(base + path)).status
  t.equal(await status('/api/billing/hup'), 401)

  await writeFile(routesFile, file(billing.url, ['  - { path: /api/billing/hup, exact: true, upstream: billing, public: true }']))
  proc.child.kill('SIGHUP')
  await waitFor(async () => await status('/api/billing/hup') === 200, 'the route of the new file')
  t.equal(proc.child.exitCode, null, 'still running after SIGHUP')
  t.match(proc.output(), /"event":"routes_reloaded"/, 'the reload is logged')
  t.notOk(proc.output().includes(billing.url), 'the interpolated URL is never logged')

  // An invalid file on SIGHUP: the table stays, the gateway keeps running.
  await writeFile(routesFile, file(billing.url, ['  - { path: /api/billing/hup, upstream: billing, role: [admin] }']))
  proc.child.kill('SIGHUP')
  await waitFor(() => proc.output().includes('unknown field \\"role\\"'), 'the refusal in the log')
  t.equal(await status('/api/billing/hup'), 200, 'the previous table stays')
  t.equal(proc.child.exitCode, null, 'still running')
})
