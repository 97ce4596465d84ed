/**
 * The direct proxy path (src/proxy/direct-forward.ts): GETs without a body skip @fastify/reply-from.
 * Real HTTP to a listening gateway and a real upstream: answers collected into one buffer and
 * answers streamed give the client the same bytes and headers; a long answer flows before the
 * upstream finishes; a client that leaves aborts the upstream request; an unusable upstream
 * status is a 502; and a GET reaches the upstream with the same headers as a request on the
 * reply-from path.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { build } from '../helper.js'
import { startEcho } from '../helpers/echo-upstream.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { waitFor } from '../helpers/redis-server.js'
import { DIRECT_BUFFER_LIMIT } from '../../src/proxy/direct-forward.js'

interface Teardown { teardown: (fn: () => unknown) => void }

const LARGE = Buffer.alloc(DIRECT_BUFFER_LIMIT * 3 + 17, 'abcdefghij')
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

interface Upstream {
  url: string
  /** Requests whose head arrived, by path. */
  arrived: string[]
  /** Paths whose request the gateway aborted (the upstream saw the connection close unanswered). */
  aborted: string[]
  /** Ends the held answer of /api/orders/held. */
  release: () => void
}

/** An upstream with one answer of each kind the direct path tells apart. */
async function startUpstream (t: Teardown): Promise<Upstream> {
  const arrived: string[] = []
  const aborted: string[] = []
  const sockets = new Set<Socket>()
  let held: ServerResponse | null = null
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? ''
    arrived.push(path)
    res.on('close', () => { if (!res.writableFinished) aborted.push(path) })
    switch (path) {
      case '/api/orders/small':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11, etag: '"s1"' })
        res.end('{"small":1}')
        return
      case '/api/orders/large':
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': LARGE.length })
        res.end(LARGE)
        return
      case '/api/orders/chunked':
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('one,')
        setImmediate(() => { res.write('two,'); res.end('three') })
        return
      case '/api/orders/untyped':
        res.writeHead(200, { 'content-length': 3 })
        res.end('abc')
        return
      case '/api/orders/empty':
        res.writeHead(204)
        res.end()
        return
      case '/api/orders/not-modified':
        res.writeHead(304, { etag: '"s1"' })
        res.end()
        return
      case '/api/orders/held':
        // The first part at once, the end only when the test says so.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': LARGE.length * 2 })
        res.write(LARGE)
        held = res
        return
      case '/api/orders/hang':
        return // never answers
      default:
        res.writeHead(404, { 'content-length': 0 })
        res.end()
    }
  })
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, arrived, aborted, release: () => held?.end(LARGE) }
}

async function setup (t: Teardown): Promise<{ upstream: Upstream, url: string, token: string }> {
  const upstream = await startUpstream(t)
  const h = await build(t, { env: { ...RELAXED_LIMITS, ORDERS_URL: upstream.url } })
  const alice = await h.login('alice')
  return { upstream, url: h.url, token: alice.access }
}

t.test('buffered and streamed answers reach the client whole, with the gateway\'s headers', async (t) => {
  const { url, token } = await setup(t)
  const get = async (path: string, headers: Record<string, string> = {}): Promise<{ res: Response, bytes: Buffer }> => {
    const res = await fetch(url + path, { headers: { authorization: `Bearer ${token}`, ...headers } })
    return { res, bytes: Buffer.from(await res.arrayBuffer()) }
  }

  const small = await get('/api/orders/small')
  t.equal(small.res.status, 200)
  t.equal(small.bytes.toString(), '{"small":1}', 'a small answer, collected into one buffer')
  t.equal(small.res.headers.get('content-length'), '11')
  t.equal(small.res.headers.get('content-type'), 'application/json')
  t.equal(small.res.headers.get('etag'), '"s1"', 'the upstream\'s headers pass')

  const large = await get('/api/orders/large')
  t.equal(large.res.status, 200)
  t.equal(sha256(large.bytes), sha256(LARGE), 'an answer past the buffer limit, streamed, arrives byte for byte')
  t.equal(large.res.headers.get('content-length'), String(LARGE.length))

  const chunked = await get('/api/orders/chunked')
  t.equal(chunked.bytes.toString(), 'one,two,three', 'a chunked answer (no Content-Length) is streamed whole')
  t.equal(chunked.res.headers.get('content-type'), 'text/plain')

  const untyped = await get('/api/orders/untyped')
  t.equal(untyped.bytes.toString(), 'abc')
  t.equal(untyped.res.headers.get('content-type'), null, 'no Content-Type is made up for an answer without one')

  const empty = await get('/api/orders/empty')
  t.equal(empty.res.status, 204)
  t.equal(empty.bytes.length, 0)

  const notModified = await get('/api/orders/not-modified', { 'if-none-match': '"s1"' })
  t.equal(notModified.res.status, 304)
  t.equal(notModified.bytes.length, 0)

  for (const { res } of [small, large, chunked, untyped, empty]) {
    t.equal(res.headers.get('x-content-type-options'), 'nosniff', `security headers on the ${res.status} answer`)
    t.match(res.headers.get('x-request-id'), /\S/, 'and the request id')
  }
})

t.test('a long answer flows to the client before the upstream has finished it', async (t) => {
  const { upstream, url, token } = await setup(t)
  const { hostname, port } = new URL(url)
  let received = 0
  let ended = false
  const req = httpRequest({ host: hostname, port: Number(port), path: '/api/orders/held', agent: false,
    headers: { authorization: `Bearer ${token}` } }, (res) => {
    res.on('data', (c: Buffer) => { received += c.length })
    res.on('end', () => { ended = true })
  })
  req.end()
  t.teardown(() => req.destroy())
  await waitFor(() => received >= LARGE.length, 'the first part at the client while the upstream holds the rest')
  t.notOk(ended, 'the answer is still open')
  upstream.release()
  await waitFor(() => ended, 'the whole answer')
  t.equal(received, LARGE.length * 2, 'every byte arrived')
})

t.test('a client that leaves aborts its upstream request', async (t) => {
  const { upstream, url, token } = await setup(t)
  const { hostname, port } = new URL(url)
  const req = httpRequest({ host: hostname, port: Number(port), path: '/api/orders/hang', agent: false,
    headers: { authorization: `Bearer ${token}` } })
  req.on('error', () => { /* destroyed below */ })
  req.end()
  await waitFor(() => upstream.arrived.includes('/api/orders/hang'), 'the request at the upstream')
  req.destroy()
  await waitFor(() => upstream.aborted.includes('/api/orders/hang'), 'the upstream request aborted by the gateway')
  t.pass('the upstream saw its request end unanswered')
})

t.test('an upstream status that cannot be sent on is a 502', async (t) => {
  // node:http refuses to write a status above 599 itself: a raw upstream does.
  const server = createServer()
  server.on('connection', (socket: Socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 600 Odd\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nhi'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const h = await build(t, { env: { ...RELAXED_LIMITS, ORDERS_URL: `http://127.0.0.1:${(server.address() as { port: number }).port}` } })
  const alice = await h.login('alice')
  const res = await h.request('GET', '/api/orders/odd', { token: alice.access })
  t.equal(res.status, 502)
  t.equal(res.body.code, 'upstream_unavailable')
})

t.test('a GET (direct path) and a POST (reply-from path) reach the upstream with the same headers', async (t) => {
  const echo = await startEcho(t)
  const h = await build(t, { env: { ...RELAXED_LIMITS, ORDERS_URL: echo.url } })
  const alice = await h.login('alice')
  const extra = { 'x-custom': 'kept', 'x-user-id': 'forged', 'accept-language': 'de' }
  t.equal((await h.request('GET', '/api/orders/1?q=a', { token: alice.access, headers: extra })).status, 200)
  t.equal((await h.request('POST', '/api/orders', { token: alice.access, headers: extra, body: { item: 'book' } })).status, 200)
  const [viaDirect, viaReplyFrom] = echo.requests
  t.equal(viaDirect?.url, '/api/orders/1?q=a', 'the query string travels')
  const comparable = (headers: Record<string, unknown>): Record<string, unknown> => {
    const { 'content-length': _l, 'content-type': _t, 'x-request-id': _r, ...rest } = headers
    return rest
  }
  t.same(comparable(viaDirect!.headers), comparable(viaReplyFrom!.headers), 'the same header set on both paths')
  t.equal(viaDirect!.headers.host, new URL(echo.url).host, 'Host names the upstream, as reply-from sends it')
  t.equal(viaDirect!.headers['x-custom'], 'kept')
  t.not(viaDirect!.headers['x-user-id'], 'forged', 'a forged identity header is replaced')
  t.equal(viaDirect!.headers.authorization, undefined, 'the client\'s credentials stay at the gateway')
})
