/**
 * Live connections (docs/live-connections.md), from the outside with real clients: WebSockets
 * through the gateway (Node's `ws`), the handshake refused as problem+json by the proxy's decision,
 * tickets, Origin, and every WebSocket and event stream ended when its session ends.
 */
import t from 'tap'
import { build, type Harness } from '../helper.js'
import { openSse } from '../helpers/sse.js'
import { mustOpen, openWs, type RefusedSocket } from '../helpers/ws-client.js'
import { captureLogLines } from '../helpers/log-capture.js'
import { sample } from '../helpers/metrics.js'
import { ROUTE_TABLE } from '../../src/proxy/route-table.js'
import { DEMO_ROUTES_FILE } from '../../src/proxy/routes-file.js'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const refused = (sock: Awaited<ReturnType<typeof openWs>>): RefusedSocket => {
  if (sock.ok) { sock.ws.terminate(); throw new Error('the handshake was accepted') }
  return sock
}

async function metrics (h: Harness): Promise<string> {
  return (await h.request('GET', '/metrics')).text
}

t.test('WebSockets through the gateway', async (t) => {
  const logs = captureLogLines()
  const h = await build(t, { env: { LIVE_CONNECTIONS_PER_USER: '3', CORS_ORIGINS: 'https://app.example' }, logger: { level: 'info', stream: logs.stream } })
  const alice = await h.login('alice')

  await t.test('a token opens the socket; the upstream greets the user and echoes', async (t) => {
    const sock = mustOpen(await openWs(h.url, '/api/orders/ws?x=1', { token: alice.access }))
    const hello = JSON.parse(await sock.next((m) => m.includes('hello'), 'hello'))
    t.same(hello, { hello: 'alice', url: '/api/orders/ws?x=1' }, 'the upstream got the identity assertion and the URL')
    sock.ws.send('ping-1')
    await sock.next((m) => m === 'ping-1', 'the echo')
    sock.ws.send(Buffer.from([1, 2, 3]))
    await sock.next((m) => m === '\u0001\u0002\u0003', 'the binary echo')
    sock.ws.close(1000, 'bye')
    t.same(await sock.waitClosed(), { code: 1000, reason: 'bye' }, 'a client close passes through')
  })

  await t.test('refused handshakes are problem+json, never a 101', async (t) => {
    const none = refused(await openWs(h.url, '/api/orders/ws'))
    t.equal(none.status, 401)
    t.equal(none.body.code, 'token_missing')
    t.match(String(none.headers['content-type']), /application\/problem\+json/)
    const bad = refused(await openWs(h.url, '/api/orders/ws', { token: 'nope' }))
    t.equal(bad.status, 401)
    const notWs = refused(await openWs(h.url, '/api/orders', { token: alice.access }))
    t.same([notWs.status, notWs.body.code], [400, 'invalid_request'], 'a route without websocket: true')
    const unknown = refused(await openWs(h.url, '/api/nothing/ws', { token: alice.access }))
    t.same([unknown.status, unknown.body.code], [404, 'not_found'])
    const users = refused(await openWs(h.url, '/api/users', { token: alice.access }))
    t.equal(users.status, 400, 'an upgrade on another upstream\'s route')
  })

  await t.test('Origin: the gateway\'s own or CORS_ORIGINS; anything else is 403 csrf_rejected', async (t) => {
    const own = mustOpen(await openWs(h.url, '/api/orders/ws', { token: alice.access, origin: h.url }))
    own.ws.close()
    const listed = mustOpen(await openWs(h.url, '/api/orders/ws', { token: alice.access, origin: 'https://app.example' }))
    listed.ws.close()
    await listed.waitClosed()
    await own.waitClosed()
    for (const origin of ['https://evil.example', 'null', 'https://app.example.evil']) {
      const res = refused(await openWs(h.url, '/api/orders/ws', { token: alice.access, origin }))
      t.same([res.status, res.body.code], [403, 'csrf_rejected'], origin)
    }
  })

  await t.test('tickets: single use, removed before the upstream, never with a token, never logged', async (t) => {
    const issued = await h.request('POST', '/auth/ws-ticket', { token: alice.access })
    t.equal(issued.status, 200)
    t.equal(issued.body.expires_in, 30)
    t.equal(issued.headers.get('cache-control'), 'no-store')
    const ticket: string = issued.body.ticket
    const sock = mustOpen(await openWs(h.url, `/api/orders/ws?a=1&ticket=${ticket}&b=2`, { origin: h.url }))
    t.same(
      JSON.parse(await sock.next((m) => m.includes('hello'), 'hello')),
      { hello: 'alice', url: '/api/orders/ws?a=1&b=2' },
      'the ticket never reaches the upstream'
    )
    sock.ws.close()
    await sock.waitClosed()
    const again = refused(await openWs(h.url, `/api/orders/ws?ticket=${ticket}`))
    t.same([again.status, again.body.code], [401, 'token_invalid'], 'a used ticket')
    t.same((refused(await openWs(h.url, '/api/orders/ws?ticket=made-up'))).body.code, 'token_invalid', 'an unknown ticket')
    const second = (await h.request('POST', '/auth/ws-ticket', { token: alice.access })).body.ticket as string
    const both = refused(await openWs(h.url, `/api/orders/ws?ticket=${second}`, { token: alice.access }))
    t.same([both.status, both.body.code], [400, 'invalid_request'], 'a ticket and a token at once')
    const consumed = refused(await openWs(h.url, `/api/orders/ws?ticket=${second}`))
    t.equal(consumed.body.code, 'token_invalid', 'a ticket is consumed whatever the outcome')
    t.equal((await h.request('POST', '/auth/ws-ticket')).status, 401, 'a ticket needs a token')
    t.notOk(logs.lines.some((l) => l.includes(ticket) || l.includes(second)), 'no log line holds a ticket')
    t.ok(logs.lines.some((l) => l.includes('ticket=[redacted]')), 'the URL is logged redacted')
  })

  await t.test('LIVE_CONNECTIONS_PER_USER: one more is 429', async (t) => {
    const open = []
    for (let i = 0; i < 3; i++) open.push(mustOpen(await openWs(h.url, '/api/orders/ws', { token: alice.access })))
    const extra = refused(await openWs(h.url, '/api/orders/ws', { token: alice.access }))
    t.same([extra.status, extra.body.code], [429, 'rate_limited'])
    const stream = await openSse(h.url, '/api/orders/events', alice.access)
    t.same([stream.status, JSON.parse(stream.text).code], [429, 'rate_limited'], 'a stream counts too')
    const bob = await h.login('bob')
    const other = mustOpen(await openWs(h.url, '/api/orders/ws', { token: bob.access }))
    t.pass('another user is not affected')
    for (const s of [...open, other]) s.ws.close()
    await Promise.all([...open, other].map((s) => s.waitClosed()))
  })

  await t.test('a message larger than the route\'s body_limit closes with 1009', async (t) => {
    const sock = mustOpen(await openWs(h.url, '/api/orders/ws', { token: alice.access }))
    sock.ws.send(Buffer.alloc(1024 * 1024 + 1))
    t.equal((await sock.waitClosed()).code, 1009)
  })

  await t.test('logout ends the session\'s sockets and streams (1008 session_revoked); other sessions stay', async (t) => {
    const mine = await h.login('alice')
    const other = await h.login('alice')
    const sock = mustOpen(await openWs(h.url, '/api/orders/ws', { token: mine.access }))
    const stays = mustOpen(await openWs(h.url, '/api/orders/ws', { token: other.access }))
    const stream = await openSse(h.url, '/api/orders/events', mine.access)
    t.equal(stream.status, 200)
    t.match(String(stream.headers['content-type']), /text\/event-stream/)
    await stream.next((m) => m.id === '2', 'two events')
    t.equal((await h.request('POST', '/auth/logout', { token: mine.access })).status, 204)
    t.same(await sock.waitClosed(5000), { code: 1008, reason: 'session_revoked' })
    await t.resolves(waitForEnd(stream), 'the stream ended')
    t.equal(stays.closed, null, 'the other session\'s socket is open')
    stays.ws.send('still here')
    await stays.next((m) => m === 'still here', 'the other socket still echoes')
    const text = await metrics(h)
    t.ok((sample(text, 'gateway_live_connections_ended_total', 'kind="websocket",reason="session_revoked"') ?? 0) >= 1, 'counted by reason')
    t.ok((sample(text, 'gateway_live_connections_ended_total', 'kind="stream",reason="session_revoked"') ?? 0) >= 1)
    t.ok(
      logs.lines.some((l) => l.includes('"event":"live_connection_closed"') && l.includes('"reason":"session_revoked"')),
      'the event live_connection_closed'
    )
    stays.ws.close()
    await stays.waitClosed()
  })

  await t.test('logout-all, and reuse detection, end every socket of the user', async (t) => {
    const s1 = await h.login('alice')
    const s2 = await h.login('alice')
    const a = mustOpen(await openWs(h.url, '/api/orders/ws', { token: s1.access }))
    const b = mustOpen(await openWs(h.url, '/api/orders/ws', { token: s2.access }))
    t.equal((await h.request('POST', '/auth/logout-all', { token: s1.access })).status, 204)
    t.same((await a.waitClosed(5000)).reason, 'session_revoked')
    t.same((await b.waitClosed(5000)).reason, 'session_revoked')
    const s3 = await h.login('alice')
    const c = mustOpen(await openWs(h.url, '/api/orders/ws', { token: s3.access }))
    t.equal((await h.request('POST', '/auth/refresh', { body: { refresh: s3.refresh } })).status, 200)
    t.equal((await h.request('POST', '/auth/refresh', { body: { refresh: s3.refresh } })).status, 200, 'grace replay')
    // The grace window is not waited out here: an older token (the first of a longer chain) is reuse at once.
    const r2 = await h.request(
      'POST',
      '/auth/refresh',
      { body: { refresh: (await h.request('POST', '/auth/refresh', { body: { refresh: s3.refresh } })).body.refresh } }
    )
    t.equal(r2.status, 200)
    t.equal((await h.request('POST', '/auth/refresh', { body: { refresh: s3.refresh } })).status, 401, 'reuse detected')
    t.same((await c.waitClosed(5000)).reason, 'session_revoked')
  })

  await t.test('an admin\'s revoke ends the user\'s sockets', async (t) => {
    const admin = await h.login('admin')
    const bob = await h.login('bob')
    const sock = mustOpen(await openWs(h.url, '/api/orders/ws', { token: bob.access }))
    t.equal((await h.request('DELETE', '/admin/users/1002/sessions', { token: admin.access })).status, 204)
    t.same(await sock.waitClosed(5000), { code: 1008, reason: 'session_revoked' })
  })

  await t.test('the metric of open connections', async (t) => {
    const sock = mustOpen(await openWs(h.url, '/api/orders/ws', { token: (await h.login('alice')).access }))
    t.equal(sample(await metrics(h), 'gateway_live_connections', 'kind="websocket"'), 1)
    sock.ws.close()
    await sock.waitClosed()
  })
})

/** Resolves once the stream ended (fails the wait otherwise). */
async function waitForEnd (stream: Awaited<ReturnType<typeof openSse>>): Promise<void> {
  const { waitFor } = await import('../helpers/redis-server.js')
  await waitFor(() => stream.ended, 'the stream to end', 5000)
}

t.test('a lost role or a deactivation ends the socket (1008 forbidden / user_inactive)', async (t) => {
  const routes = ROUTE_TABLE.map((r) => r.path === '/api/orders/ws' ? { ...r, roles: ['user'] } : r)
  const h = await build(t, { routes })
  const admin = await h.login('admin')
  const alice = await h.login('alice')
  const bob = await h.login('bob')
  t.equal(refused(await openWs(h.url, '/api/orders/ws', { token: admin.access })).status, 403, 'a role the route needs')
  const a = mustOpen(await openWs(h.url, '/api/orders/ws', { token: alice.access }))
  const b = mustOpen(await openWs(h.url, '/api/orders/ws', { token: bob.access }))
  t.equal((await h.request('PATCH', '/api/users/1001', { token: admin.access, body: { roles: ['guest'] } })).status, 200)
  t.same(await a.waitClosed(5000), { code: 1008, reason: 'forbidden' })
  t.equal(b.closed, null, 'another user stays')
  t.equal((await h.request('PATCH', '/api/users/1002', { token: admin.access, body: { active: false } })).status, 200)
  t.same(await b.waitClosed(5000), { code: 1008, reason: 'user_inactive' })
})

t.test('a routes reload that takes websocket away ends the route\'s sockets (1008 forbidden)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-live-routes-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'routes.yaml')
  const demo = await readFile(DEMO_ROUTES_FILE, 'utf8')
  await writeFile(file, demo, { mode: 0o644 })
  const h = await build(t, { env: { ROUTES_FILE: file } })
  const alice = await h.login('alice')
  const sock = mustOpen(await openWs(h.url, '/api/orders/ws', { token: alice.access }))
  const stream = await openSse(h.url, '/api/orders/events', alice.access)
  await writeFile(file, demo.replace('upstream: orders, websocket: true', 'upstream: orders'), { mode: 0o644 })
  t.equal((await h.gateway.routesControl.reload('signal')).result, 'success')
  t.same(await sock.waitClosed(5000), { code: 1008, reason: 'forbidden' })
  t.notOk(stream.ended, 'a stream its route still allows stays')
  stream.close()
})

t.test('shutdown closes sockets with 1001', async (t) => {
  const h = await build(t)
  const sock = mustOpen(await openWs(h.url, '/api/orders/ws', { token: (await h.login('alice')).access }))
  await h.gateway.close()
  t.equal((await sock.waitClosed()).code, 1001)
})
