/**
 * Interim (1xx) answers of an upstream: 102 and 103 are dropped and the client receives the
 * upstream's final answer, on both proxy paths (direct GETs and reply-from); a kept-alive client
 * connection stays in step: each answer belongs to the request it was sent for. An unsolicited
 * 100 Continue (the gateway never sends `Expect: 100-continue`) is refused by undici, the HTTP
 * client of both paths (nodejs/undici#197): 502, and still in step.
 */
import t from 'tap'
import { createServer, Agent, request as nodeRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { build } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/** An upstream that sends the interim answer its path names, then 200 with the path as JSON. */
async function startInterimUpstream (t: Teardown): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0] ?? ''
    if (path.endsWith('/i100')) res.writeContinue()
    else if (path.endsWith('/i102')) res.writeProcessing()
    else if (path.endsWith('/i103')) res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
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

t.test('102 and 103 before the final answer: the client gets the final 200, on both paths, in step; an unsolicited 100 is a 502',
  async (t) => {
  const upstream = await startInterimUpstream(t)
  const h = await build(t, { env: { ...RELAXED_LIMITS, ORDERS_URL: upstream } })
  const alice = await h.login('alice')
  // One connection to the gateway for everything: an answer off by one would show as a wrong path.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  for (const round of [1, 2]) {
    for (const kind of ['i100', 'i102', 'i103', 'plain']) {
      const path = `/api/orders/${kind}`
      if (kind === 'i100') {
        for (const method of ['GET', 'POST']) {
          const refused = await call(agent, h.url + path, method, alice.access, method === 'POST' ? '{"n":1}' : undefined)
          t.equal(refused.status, 502, `round ${round}: ${method} after an unsolicited 100 is 502`)
          t.equal(JSON.parse(refused.body).code, 'upstream_unavailable', `round ${round}: ${method} 100: upstream_unavailable`)
        }
        continue
      }
      const get = await call(agent, h.url + path, 'GET', alice.access)
      t.equal(get.status, 200, `round ${round}: GET ${kind} (direct path) gets the final status`)
      t.same(JSON.parse(get.body), { path, method: 'GET' }, `round ${round}: GET ${kind} gets its own answer`)
      const post = await call(agent, h.url + path, 'POST', alice.access, '{"n":1}')
      t.equal(post.status, 200, `round ${round}: POST ${kind} (reply-from path) gets the final status`)
      t.same(JSON.parse(post.body), { path, method: 'POST' }, `round ${round}: POST ${kind} gets its own answer`)
    }
  }
})
