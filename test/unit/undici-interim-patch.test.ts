/**
 * The project's patch of undici (patches/undici+<version>.patch, applied by patch-package: the
 * `postinstall` script and the Dockerfile's build stage) is in place: an unsolicited `100 Continue`
 * before the final answer is an interim answer, as 102 and 103 are, instead of a destroyed
 * connection (nodejs/undici#197; docs/proxy.md, "Interim answers"). Unpatched undici fails these
 * tests, so a lost patch (an install with --ignore-scripts, an undici upgrade without a new patch)
 * shows in `make check`, not only in the proxy's integration tests.
 */
import t from 'tap'
import { createServer, type Socket } from 'node:net'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { Client } from 'undici'
import { ROOT } from '../helpers/processes.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * A raw HTTP/1.1 server: for each request head it receives (no bodies), it writes `chunks(n)`,
 * n counting the requests of the server. Keeps connections open (keep-alive) and counts them.
 */
async function rawServer (t: Teardown, chunks: (n: number) => string[]): Promise<{ url: string, connections: () => number }> {
  let requests = 0
  let connections = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let pending = ''
    socket.on('data', (data: Buffer) => {
      pending += data.toString('latin1')
      for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
        pending = pending.slice(end + 4)
        for (const chunk of chunks(++requests)) socket.write(chunk)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { url: `http://127.0.0.1:${address.port}`, connections: () => connections }
}

const final = (body: string): string => `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'

/** Two requests on one undici Client (one connection): statuses and bodies. */
async function twoRequests (t: Teardown, url: string): Promise<Array<{ status: number, body: string }>> {
  const client = new Client(url, { pipelining: 1 })
  t.teardown(() => client.destroy())
  const answers: Array<{ status: number, body: string }> = []
  for (const path of ['/one', '/two']) {
    const res = await client.request({ method: 'GET', path })
    answers.push({ status: res.statusCode, body: await res.body.text() })
  }
  return answers
}

t.test('the patch file is the one of the installed undici', async (t) => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'node_modules/undici/package.json'), 'utf8')) as { version: string }).version
  const patch = join(ROOT, 'patches', `undici+${version}.patch`)
  t.ok(existsSync(patch), `patches/undici+${version}.patch exists (regenerate it after an undici upgrade: docs/development.md)`)
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.equal(pkg.scripts.postinstall, 'patch-package --error-on-fail --error-on-warn',
    'npm ci applies the patches and fails when one does not apply or names another version')
})

t.test('@fastify/reply-from loads the same (patched) undici as the direct path', async (t) => {
  const fromReplyFrom = createRequire(createRequire(join(ROOT, 'package.json')).resolve('@fastify/reply-from')).resolve('undici')
  t.equal(fromReplyFrom, join(ROOT, 'node_modules/undici/index.js'), 'no nested undici copy that the patch would miss')
})

t.test('an unsolicited 100 Continue, then the final answer: undici returns the final answer', async (t) => {
  const server = await rawServer(t, (n) => [CONTINUE, final(`answer ${n}`)])
  const answers = await twoRequests(t, server.url)
  t.same(answers, [{ status: 200, body: 'answer 1' }, { status: 200, body: 'answer 2' }], 'each request gets its own final answer')
  t.equal(server.connections(), 1, 'the connection stayed open and in step')
})

t.test('100 and the final answer in one write (both heads in one parser chunk)', async (t) => {
  const server = await rawServer(t, (n) => [CONTINUE + final(`answer ${n}`)])
  const answers = await twoRequests(t, server.url)
  t.same(answers, [{ status: 200, body: 'answer 1' }, { status: 200, body: 'answer 2' }], 'each request gets its own final answer')
  t.equal(server.connections(), 1, 'one connection for both')
})

t.test('several interim answers: 100, 103 and 100 again before the final one', async (t) => {
  const early = 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload; as=style\r\n\r\n'
  const server = await rawServer(t, (n) => [CONTINUE, early + CONTINUE, final(`answer ${n}`)])
  const answers = await twoRequests(t, server.url)
  t.same(answers, [{ status: 200, body: 'answer 1' }, { status: 200, body: 'answer 2' }], 'each request gets its own final answer')
  t.equal(server.connections(), 1, 'one connection for both')
})
