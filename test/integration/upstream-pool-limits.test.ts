/**
 * Issue 8, item 7: UPSTREAM_TIMEOUT_MS covers the wait for a pooled connection, and one user cannot
 * occupy an upstream's whole pool (UPSTREAM_USER_CONCURRENCY, 429 past it). Real HTTP, a listening
 * gateway, real upstream servers; conditions are polled, nothing is timed.
 */
import t from 'tap'
import { createServer, request as httpRequest, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { build, type HttpResult } from '../helper.js'
import { startEcho } from '../helpers/echo-upstream.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { waitFor } from '../helpers/redis-server.js'

/** The gateway's pool size per upstream (src/routes/proxy/proxy-routes.ts). */
const POOL_CONNECTIONS = 128

t.test('a user past UPSTREAM_USER_CONCURRENCY gets 429; other users do not', async (t) => {
  const echo = await startEcho(t, { behaviour: 'hang' })
  const auth = await build(t, { env: { ...RELAXED_LIMITS } })
  const h = await build(t, {
    env: { ...RELAXED_LIMITS, ORDERS_URL: echo.url, UPSTREAM_USER_CONCURRENCY: '2', UPSTREAM_TIMEOUT_MS: '1500' },
    keyRing: auth.keyRing,
    redis: auth.redis
  })
  const alice = await auth.login('alice')
  const bob = await auth.login('bob')

  const hanging = [h.request('GET', '/api/orders/1', { token: alice.access }), h.request('GET', '/api/orders/2', { token: alice.access })]
  await waitFor(() => echo.count === 2, 'two requests of alice at the upstream')
  const third = await h.request('GET', '/api/orders/3', { token: alice.access })
  t.equal(third.status, 429, 'a third request in flight is refused')
  t.equal(third.body.code, 'rate_limited')
  t.ok(Number(third.headers.get('retry-after')) >= 1, 'with Retry-After')
  t.equal(echo.count, 2, 'it never reached the upstream')

  const bobs = h.request('GET', '/api/orders/4', { token: bob.access })
  await waitFor(() => echo.count === 3, 'bob\'s request at the upstream')
  const answers: HttpResult[] = await Promise.all([...hanging, bobs])
  t.same(answers.map((a) => a.status), [504, 504, 504], 'the hanging requests time out')

  echo.setBehaviour('answer')
  const again = await h.request('GET', '/api/orders/5', { token: alice.access })
  t.equal(again.status, 200, 'finished requests give their slots back')
})

t.test('UPSTREAM_TIMEOUT_MS covers the wait for a connection of a full pool', async (t) => {
  // An upstream that answers at once and then streams its body until told to stop: every
  // connection of the pool stays busy, and no request of them ever times out.
  const sockets = new Set<Socket>()
  const streams = new Set<ServerResponse>()
  let arrived = 0
  const server = createServer((req, res) => {
    arrived++
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('.')
    const timer = setInterval(() => res.write('.'), 200)
    res.on('close', () => clearInterval(timer))
    streams.add(res)
    req.resume()
  })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const stopStreams = (): void => { for (const r of streams) r.end(); streams.clear() }
  t.teardown(() => new Promise<void>((resolve) => {
    stopStreams()
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  const { port: upstreamPort } = server.address() as { port: number }

  const auth = await build(t, { env: { ...RELAXED_LIMITS } })
  const h = await build(t, {
    env: { ...RELAXED_LIMITS, ORDERS_URL: `http://127.0.0.1:${upstreamPort}`, UPSTREAM_USER_CONCURRENCY: '1000',
      UPSTREAM_TIMEOUT_MS: '1000' },
    keyRing: auth.keyRing,
    redis: auth.redis
  })
  const alice = await auth.login('alice')
  const bob = await auth.login('bob')
  const { hostname, port } = new URL(h.url)

  // Fill the pool with streaming answers (their heads arrive, their bodies go on).
  let heads = 0
  const clients: Array<{ destroy: () => void }> = []
  for (let i = 0; i < POOL_CONNECTIONS; i++) {
    const req = httpRequest({ host: hostname, port: Number(port), path: `/api/orders/stream-${i}`, agent: false,
      headers: { authorization: `Bearer ${alice.access}` } }, (res) => {
      heads++
      res.resume()
      res.on('error', () => {})
    })
    req.on('error', () => {})
    req.end()
    clients.push(req)
  }
  t.teardown(() => { for (const c of clients) c.destroy() })
  await waitFor(() => heads === POOL_CONNECTIONS && arrived === POOL_CONNECTIONS, 'the pool is full of streaming answers', 30_000)

  // The pool is full: another user's request waits for a connection, and must time out anyway.
  let queued: HttpResult | undefined
  const pending = h.request('GET', '/api/orders/queued', { token: bob.access }).then((r) => { queued = r })
  await waitFor(() => queued !== undefined, 'the queued request is answered while the pool stays full', 20_000)
  t.equal(streams.size, POOL_CONNECTIONS, 'every stream is still running: no connection was freed')
  t.equal(queued!.status, 504, 'a request that waited for a connection is a 504')
  t.equal(queued!.body.code, 'upstream_timeout')
  t.equal(arrived, POOL_CONNECTIONS, 'the queued request never reached the upstream')
  await pending
  stopStreams()
})
