/**
 * https upstreams: UPSTREAM_CA_FILE (a PEM bundle) is what the gateway trusts for them, and
 * certificates are always verified. A throwaway CA (openssl) signs the upstream's certificate:
 * with that CA the gateway proxies (both proxy paths: the direct GET path and reply-from for a
 * POST); with another CA, or none (Node's public roots), it answers 502 upstream_unavailable and
 * the upstream never receives the request. The identity backend (USERS_URL) and a WebSocket
 * upstream (wss) behind the same CA: logins and sockets work with that CA; with another, both are
 * 502 upstream_unavailable. A bundle that cannot be read or holds no certificate stops start-up
 * naming the variable.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import { connect, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from '../helper.js'
import { mustOpen, openWs } from '../helpers/ws-client.js'
import { ConfigError, loadConfig } from '../../src/config.js'

function openssl (cwd: string, ...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`)
}

/** A CA (ca.pem), another unrelated CA (other-ca.pem), and a 127.0.0.1 server certificate signed by the first. */
async function throwawayPki (dir: string): Promise<{ ca: string, otherCa: string, key: string, cert: string }> {
  for (const name of ['ca', 'other-ca']) {
    openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', `/CN=throwaway ${name}`, '-keyout', `${name}.key`, '-out', `${name}.pem`)
  }
  await writeFile(join(dir, 'san.ext'),
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n')
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key',
    '-out', 'server.csr')
  openssl(dir, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile',
    'san.ext', '-out', 'server.pem')
  return { ca: join(dir, 'ca.pem'), otherCa: join(dir, 'other-ca.pem'), key: await readFile(join(dir, 'server.key'), 'utf8'),
    cert: await readFile(join(dir, 'server.pem'), 'utf8') }
}

t.test('https upstream behind a private CA', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-upstream-tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const pki = await throwawayPki(dir)

  const received: Array<{ method: string, userId: string | undefined }> = []
  const upstream: Server = createServer({ key: pki.key, cert: pki.cert }, (req, res) => {
    received.push({ method: req.method ?? '', userId: req.headers['x-user-id'] as string | undefined })
    req.resume()
    req.on('end', () => {
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' })
      res.end('{"orders":[]}')
    })
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { upstream.closeAllConnections(); upstream.close(() => resolve()) }))
  const ordersUrl = `https://127.0.0.1:${(upstream.address() as { port: number }).port}`

  t.test('the right CA: proxied on both paths', async (t) => {
    received.length = 0
    const h = await build(t, { env: { ORDERS_URL: ordersUrl, UPSTREAM_CA_FILE: pki.ca } })
    const alice = await h.login('alice')
    const get = await h.request('GET', '/api/orders', { token: alice.access })
    t.equal(get.status, 200, 'GET through the https upstream')
    t.same(get.body, { orders: [] })
    const post = await h.request('POST', '/api/orders', { token: alice.access, body: { item: 'book' } })
    t.equal(post.status, 201, 'POST through the https upstream')
    t.same(received, [{ method: 'GET', userId: '1001' }, { method: 'POST', userId: '1001' }],
      'the upstream got both, with the identity headers')
  })

  for (const [what, env] of [
    ['another CA', { UPSTREAM_CA_FILE: pki.otherCa }],
    ['no UPSTREAM_CA_FILE (Node\'s public roots)', {}]
  ] as const) {
    t.test(`${what}: 502 upstream_unavailable, nothing reaches the upstream`, async (t) => {
      received.length = 0
      const h = await build(t, { env: { ORDERS_URL: ordersUrl, ...env } })
      const alice = await h.login('alice')
      for (const method of ['GET', 'POST']) {
        const res = await h.request(method, '/api/orders',
          { token: alice.access, ...(method === 'POST' ? { body: { item: 'book' } } : {}) })
        t.equal(res.status, 502, `${method}: 502`)
        t.equal(res.body.code, 'upstream_unavailable', `${method}: upstream_unavailable`)
        t.notMatch(res.text, /certificate|self.signed|UNABLE_TO|stack/i, `${method}: no TLS detail leaks`)
      }
      t.same(received, [], 'the upstream received no request')
    })
  }
})

/**
 * TLS in front of a plain-http server of the harness (a stub): each connection whose handshake
 * completes is piped to it byte for byte, so HTTP and WebSocket upgrades pass alike.
 */
interface TlsFront { url: string, to: (port: number) => void, connections: () => number }
async function tlsFront (t: { teardown: (fn: () => unknown) => void }, pki: { key: string, cert: string }): Promise<TlsFront> {
  let target = 0
  let connections = 0
  const sockets = new Set<Socket>()
  const front = createTlsServer({ key: pki.key, cert: pki.cert }, (clear) => {
    connections++
    const plain = connect(target, '127.0.0.1')
    for (const s of [clear, plain]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => { clear.destroy(); plain.destroy() })
    }
    clear.pipe(plain).pipe(clear)
  })
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); front.close(() => resolve()) }))
  return { url: `https://127.0.0.1:${(front.address() as { port: number }).port}`, to: (port) => { target = port },
    connections: () => connections }
}

const portOf = (server: FastifyInstance): number => (server.server.address() as { port: number }).port

t.test('the identity backend and a WebSocket upstream behind a private CA', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-tls-front-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const pki = await throwawayPki(dir)
  const users = await tlsFront(t, pki)
  const orders = await tlsFront(t, pki)

  t.test('the right CA: logins over https, WebSockets over wss', async (t) => {
    const h = await build(t, { env: { USERS_URL: users.url, ORDERS_URL: orders.url, UPSTREAM_CA_FILE: pki.ca } })
    users.to(portOf(h.users))
    orders.to(portOf(h.orders))
    const before = users.connections()
    const alice = await h.login('alice')
    t.ok(users.connections() > before, 'the credential check went through the TLS front')
    const sock = mustOpen(await openWs(h.url, '/api/orders/ws', { token: alice.access }))
    t.same(JSON.parse(await sock.next((m) => m.includes('hello'), 'hello')), { hello: 'alice', url: '/api/orders/ws' },
      'the WebSocket reached the orders stub over wss')
    sock.ws.close()
    await sock.waitClosed()
  })

  t.test('another CA: the login and the WebSocket are 502 upstream_unavailable', async (t) => {
    const h = await build(t, { env: { USERS_URL: users.url, UPSTREAM_CA_FILE: pki.otherCa } })
    users.to(portOf(h.users))
    const usersBefore = users.connections()
    const login = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
    t.same([login.status, login.body.code], [502, 'upstream_unavailable'], 'the backend\'s certificate is refused')
    t.equal(users.connections(), usersBefore, 'no connection to the identity backend completed its handshake')

    // The identity backend in plain http here, so that alice has a session to open the WebSocket with.
    const h2 = await build(t, { env: { ORDERS_URL: orders.url, UPSTREAM_CA_FILE: pki.otherCa } })
    orders.to(portOf(h2.orders))
    const alice = await h2.login('alice')
    const ordersBefore = orders.connections()
    const ws = await openWs(h2.url, '/api/orders/ws', { token: alice.access })
    if (ws.ok) ws.ws.terminate()
    t.notOk(ws.ok, 'no 101')
    if (!ws.ok) t.same([ws.status, ws.body.code], [502, 'upstream_unavailable'], 'the wss upstream\'s certificate is refused')
    t.equal(orders.connections(), ordersBefore, 'no connection to the orders upstream completed its handshake')
  })
})

t.test('UPSTREAM_CA_FILE that cannot be used stops start-up naming the variable', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-upstream-ca-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'empty.pem'), 'not a certificate\n')
  await writeFile(join(dir, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
  for (const [file, problem] of [
    [join(dir, 'missing.pem'), /cannot read .* \(ENOENT\)/],
    [join(dir, 'empty.pem'), /holds no PEM certificate/],
    [join(dir, 'broken.pem'), /certificate 1 of .* does not parse/]
  ] as const) {
    let error: unknown
    try { loadConfig({ UPSTREAM_CA_FILE: file }) } catch (err) { error = err }
    t.ok(error instanceof ConfigError, `${file.slice(dir.length + 1)}: a configuration error`)
    t.equal((error as ConfigError).variable, 'UPSTREAM_CA_FILE')
    t.match((error as ConfigError).message, problem)
  }
})
