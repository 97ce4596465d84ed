/**
 * Interim (1xx) answers of an upstream: 100, 102 and 103, one or several before the final answer,
 * are dropped and the client receives the upstream's final answer, on both proxy paths (direct
 * GETs and reply-from: bodies, and every method with PROXY_DIRECT_GET=false); a kept-alive client
 * connection stays in step: each answer belongs to the request it was sent for. The gateway never
 * sends `Expect: 100-continue`, so an upstream's 100 is unsolicited: undici, the HTTP client of both
 * paths, destroys the connection on it unless patched (nodejs/undici#197); the project's patch
 * (patches/undici+<version>.patch, docs/proxy.md "Interim answers") makes it an interim answer like
 * 102 and 103. Two upstreams: Node's own (`writeContinue`, `writeProcessing`, `writeEarlyHints`) and
 * a raw one for what Node would not write: 100 and the final head in one write (one parser chunk),
 * 100 then a close without a final answer (502, not a hang), 101 to a request that asked for no
 * upgrade (502).
 */
import t from 'tap'
import { createServer, Agent, request as nodeRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type Socket } from 'node:net'
import { build, type Harness } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/** An upstream that sends the interim answers its path names, then 200 with the path as JSON. */
async function startInterimUpstream (t: Teardown): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0] ?? ''
    if (path.endsWith('/i100')) res.writeContinue()
    else if (path.endsWith('/i102')) res.writeProcessing()
    else if (path.endsWith('/i103')) res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
    else if (path.endsWith('/i100-103')) {
      res.writeContinue()
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
    }
    req.resume()
    req.on('end', () => {
      const body = JSON.stringify({ path, method: req.method })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'

function finalAnswer (path: string, method: string): string {
  const body = JSON.stringify({ path, method })
  return `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

/**
 * A raw HTTP/1.1 upstream (keep-alive, one request at a time per connection): after each request
 * (head and Content-Length or chunked body) it writes what the path's last segment names.
 */
async function startRawUpstream (t: Teardown): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createNetServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let pending = Buffer.alloc(0)
    socket.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data])
      for (;;) {
        const headEnd = pending.indexOf('\r\n\r\n')
        if (headEnd === -1) return
        const head = pending.subarray(0, headEnd).toString('latin1')
        const [method = '', target = ''] = head.split('\r\n')[0]!.split(' ')
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
        let end = headEnd + 4
        if (length !== null) {
          end += Number(length[1])
          if (pending.length < end) return
        } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
          const last = pending.indexOf('0\r\n\r\n', headEnd + 4)
          if (last === -1) return
          end = last + 5
        }
        pending = pending.subarray(end)
        const path = target.split('?')[0] ?? ''
        const kind = path.split('/').at(-1)
        if (kind === 'one-write') socket.write(CONTINUE + finalAnswer(path, method))
        else if (kind === '100-close') socket.end(CONTINUE)
        else if (kind === '101') socket.end('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n')
        else socket.write(finalAnswer(path, method))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

/** One request on the given agent; resolves to status and body. */
async function call (agent: Agent, url: string, method: string, token: string, body?: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = nodeRequest(url, { method, agent,
      headers: { authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** The two gateway set-ups: GETs on the direct path (the default), and every request through reply-from. */
const SETUPS = [
  { name: 'direct GETs', env: { PROXY_DIRECT_GET: 'true' }, getPath: 'direct' },
  { name: 'PROXY_DIRECT_GET=false', env: { PROXY_DIRECT_GET: 'false' }, getPath: 'reply-from' }
] as const

async function gateways (t: Teardown, upstream: string): Promise<Array<{ setup: typeof SETUPS[number], h: Harness }>> {
  const first = await build(t, { env: { ...RELAXED_LIMITS, ...SETUPS[0].env, ORDERS_URL: upstream } })
  const second = await build(t, { env: { ...RELAXED_LIMITS, ...SETUPS[1].env, ORDERS_URL: upstream },
    redis: first.redis, keyRing: first.keyRing })
  return [{ setup: SETUPS[0], h: first }, { setup: SETUPS[1], h: second }]
}

t.test('100, 102, 103 and several interim answers before the final one: the client gets the final 200, in step',
  async (t) => {
  const upstream = await startInterimUpstream(t)
  for (const { setup, h } of await gateways(t, upstream)) {
    const alice = await h.login('alice')
    // One connection to the gateway for everything: an answer off by one would show as a wrong path.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    for (const round of [1, 2]) {
      for (const kind of ['i100', 'i102', 'i103', 'i100-103', 'plain']) {
        const path = `/api/orders/${kind}`
        const at = `${setup.name}, round ${round}`
        const get = await call(agent, h.url + path, 'GET', alice.access)
        t.equal(get.status, 200, `${at}: GET ${kind} (${setup.getPath} path) gets the final status`)
        t.same(JSON.parse(get.body), { path, method: 'GET' }, `${at}: GET ${kind} gets its own answer`)
        const post = await call(agent, h.url + path, 'POST', alice.access, '{"n":1}')
        t.equal(post.status, 200, `${at}: POST ${kind} (reply-from path) gets the final status`)
        t.same(JSON.parse(post.body), { path, method: 'POST' }, `${at}: POST ${kind} gets its own answer`)
      }
    }
  }
})

t.test('raw upstream: 100 and the final answer in one write; 100 then a close; 101 without an upgrade', async (t) => {
  const upstream = await startRawUpstream(t)
  for (const { setup, h } of await gateways(t, upstream)) {
    const alice = await h.login('alice')
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    for (const round of [1, 2]) {
      const at = `${setup.name}, round ${round}`
      for (const [method, body] of [['GET', undefined], ['POST', '{"n":1}']] as const) {
        const via = method === 'GET' ? setup.getPath : 'reply-from'
        const path = '/api/orders/one-write'
        const both = await call(agent, h.url + path, method, alice.access, body)
        t.equal(both.status, 200, `${at}: ${method} (${via} path), 100 and 200 in one chunk: the final status`)
        t.same(JSON.parse(both.body), { path, method }, `${at}: ${method} one-write gets its own answer`)

        for (const kind of ['100-close', '101']) {
          const failed = await call(agent, h.url + `/api/orders/${kind}`, method, alice.access, body)
          t.equal(failed.status, 502, `${at}: ${method} (${via} path), ${kind}: 502`)
          t.equal(JSON.parse(failed.body).code, 'upstream_unavailable', `${at}: ${method} ${kind}: upstream_unavailable`)
        }

        const plainPath = '/api/orders/plain'
        const after = await call(agent, h.url + plainPath, method, alice.access, body)
        t.equal(after.status, 200, `${at}: ${method} after the failures: 200`)
        t.same(JSON.parse(after.body), { path: plainPath, method }, `${at}: ${method} plain gets its own answer`)
      }
    }
  }
})
