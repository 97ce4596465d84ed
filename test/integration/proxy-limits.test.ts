/**
 * Failure modes and limits of the proxy (docs/proxy.md, issue "default-deny proxy"): upstream
 * down 502, upstream slow 504, non-idempotent requests never retried, bodies over 1 MiB 413, heads
 * over 16 KiB 431, and request smuggling attempts refused with 400 before anything is forwarded.
 */
import t, { type Test } from 'tap'
import { Readable } from 'node:stream'
import { build } from '../helper.js'
import { startEcho } from '../helpers/echo-upstream.js'
import { freePort, waitFor } from '../helpers/redis-server.js'
import { rawBody, rawPathRequest, rawSocket } from '../helpers/raw-http.js'

const RELAXED: Record<string, string> = { LOGIN_IP_LIMIT: '10000', API_USER_LIMIT: '10000', PUBLIC_IP_LIMIT: '10000' }
const MIB = 1024 * 1024

/** A problem+json answer with only the catalogue's members: no stack, no cause, no upstream address. */
function assertBareProblem (t: Test, res: { status: number, headers: Record<string, unknown>, text: string, body: any }, status: number,
  code: string, hidden: string[] = []): void {
  t.equal(res.status, status)
  t.match(String(res.headers['content-type']), /^application\/problem\+json/)
  t.equal(res.body?.code, code)
  t.equal(res.body?.status, status)
  t.same(Object.keys(res.body ?? {}).sort(), ['code', 'instance', 'request_id', 'status', 'title', 'type'], 'only the catalogue members')
  for (const word of ['stack', 'ECONNREFUSED', 'ECONNRESET', 'UND_ERR', 'at ', 'Error', ...hidden]) {
    t.notOk(res.text.includes(word), `the answer does not mention ${JSON.stringify(word)}`)
  }
}

t.test('upstream down: 502 upstream_unavailable, no leak, never retried', async (t) => {
  const deadPort = await freePort()
  const h = await build(t, { env: { ...RELAXED, ORDERS_URL: `http://127.0.0.1:${deadPort}` } })
  const alice = await h.login('alice')

  for (const method of ['GET', 'POST', 'DELETE']) {
    const res = await rawPathRequest(h.url, method, '/api/orders',
      { token: alice.access, ...(method === 'POST' ? { body: '{"item":"x"}' } : {}) })
    assertBareProblem(t, res, 502, 'upstream_unavailable', [String(deadPort)])
    t.type(res.headers['x-request-id'], 'string', 'the request id is echoed')
  }
  // The users upstream is unaffected.
  t.equal((await h.request('GET', '/api/users/me', { token: alice.access })).status, 200)
})

t.test('an upstream that drops the connection: 502, and a non-idempotent request is sent once', async (t) => {
  const echo = await startEcho(t, { behaviour: 'destroy' })
  const auth = await build(t, { env: RELAXED })
  const h = await build(t, { env: { ...RELAXED, ORDERS_URL: echo.url }, keyRing: auth.keyRing, redis: auth.redis })
  const alice = await auth.login('alice')

  for (const method of ['POST', 'PATCH']) {
    echo.reset()
    const res = await rawPathRequest(h.url, method, '/api/orders', { token: alice.access, body: '{"item":"x"}' })
    assertBareProblem(t, res, 502, 'upstream_unavailable', [String(echo.port)])
    t.equal(echo.count, 1, `${method} reached the upstream exactly once`)
  }
  // A later request does not replay the earlier ones either.
  echo.reset()
  echo.setBehaviour('answer')
  const ok = await rawPathRequest(h.url, 'GET', '/api/orders', { token: alice.access })
  t.equal(ok.status, 200)
  t.same(echo.requests.map((r) => `${r.method} ${r.url}`), ['GET /api/orders'], 'only the new request arrived')
})

t.test('upstream slow: 504 upstream_timeout within UPSTREAM_TIMEOUT_MS', async (t) => {
  const echo = await startEcho(t, { behaviour: 'hang' })
  const auth = await build(t, { env: RELAXED })
  const h = await build(t, { env: { ...RELAXED, ORDERS_URL: echo.url, UPSTREAM_TIMEOUT_MS: '300' }, keyRing: auth.keyRing,
    redis: auth.redis })
  const alice = await auth.login('alice')

  const started = Date.now()
  const res = await rawPathRequest(h.url, 'GET', '/api/orders', { token: alice.access })
  const elapsed = Date.now() - started
  assertBareProblem(t, res, 504, 'upstream_timeout')
  // The upstream never answers, so a 504 at all shows the deadline fired; how soon is the bench's business.
  t.ok(elapsed >= 250, `waited for the timeout (${elapsed} ms)`)
  t.equal(echo.count, 1, 'the request reached the upstream once')

  echo.reset()
  const post = await rawPathRequest(h.url, 'POST', '/api/orders', { token: alice.access, body: '{"item":"x"}' })
  assertBareProblem(t, post, 504, 'upstream_timeout')
  t.equal(echo.count, 1, 'a timed-out POST is not retried')
  t.equal(echo.requests[0]?.body, '{"item":"x"}')
})

t.test('body and head limits', async (t) => {
  const echo = await startEcho(t)
  const auth = await build(t, { env: RELAXED })
  const h = await build(t, { env: { ...RELAXED, ORDERS_URL: echo.url }, keyRing: auth.keyRing, redis: auth.redis })
  const alice = await auth.login('alice')
  t.beforeEach(() => { echo.reset() })

  t.test('the server has its timeouts set', async (t) => {
    const server = h.gateway.server
    t.ok(server.requestTimeout > 0, `requestTimeout ${server.requestTimeout}`)
    t.ok(server.headersTimeout > 0, `headersTimeout ${server.headersTimeout}`)
    t.ok(server.keepAliveTimeout > 0, `keepAliveTimeout ${server.keepAliveTimeout}`)
  })

  t.test('a body of exactly 1 MiB is forwarded whole (control)', async (t) => {
    const body = 'a'.repeat(MIB)
    const res = await rawPathRequest(h.url, 'POST', '/api/orders',
      { token: alice.access, body, headers: { 'content-type': 'application/octet-stream' } })
    t.equal(res.status, 200)
    t.equal(echo.count, 1)
    t.equal(echo.requests[0]?.bodyBytes, MIB)
    t.equal(echo.requests[0]?.complete, true)
  })

  for (const contentType of ['application/json', 'application/octet-stream', 'text/plain']) {
    t.test(`a body over 1 MiB with Content-Length (${contentType}): 413 and nothing forwarded`, async (t) => {
      const body = 'a'.repeat(MIB + 1)
      let res
      try {
        res = await rawPathRequest(h.url, 'POST', '/api/orders', { token: alice.access, body, headers: { 'content-type': contentType } })
      } catch (err) {
        t.fail(`the client got no answer: ${(err as Error).message}`)
        return
      }
      assertBareProblem(t, res, 413, 'payload_too_large')
      t.equal(echo.count, 0, 'the upstream received nothing')
    })
  }

  t.test('a Content-Length over 1 MiB is refused before the body is read', async (t) => {
    const res = await rawSocket(h.url,
      `POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice.access}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${10 * MIB}\r\n\r\n{"item":`)
    t.equal(res.status, 413)
    t.equal(rawBody(res.text)?.code, 'payload_too_large')
    t.ok(res.closed, 'the connection is closed rather than kept to drain the unread body')
    t.equal(echo.count, 0)
  })

  t.test('a chunked body over 1 MiB without Content-Length: 413 or refused, never forwarded whole', async (t) => {
    async function * chunks (): AsyncGenerator<Buffer> {
      const piece = Buffer.alloc(64 * 1024, 'b')
      for (let sent = 0; sent < 3 * MIB; sent += piece.length) yield piece
    }
    // Two honest outcomes: the 413, or (when the gateway closes while the body is still being written)
    // the connection cut under the client; anything else fails.
    let answer: { status: number, code: unknown } | undefined
    let cut: string | undefined
    try {
      const res = await rawPathRequest(h.url, 'POST', '/api/orders', {
        token: alice.access, body: Readable.from(chunks()), headers: { 'content-type': 'application/octet-stream' }
      })
      answer = { status: res.status, code: res.body?.code }
    } catch (err) {
      cut = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    }
    if (answer !== undefined) t.same(answer, { status: 413, code: 'payload_too_large' }, '413 payload_too_large')
    else t.match(cut, /^(ECONNRESET|EPIPE)$/, `the connection was cut (${cut ?? ''})`)
    // Whatever reached the upstream, it never got a whole body, nor more than the limit.
    await waitFor(() => echo.requests.every((r) => !r.complete || r.bodyBytes <= MIB), 'the upstream to settle', 2_000).catch(() => {})
    t.same(echo.requests.filter((r) => r.complete && r.bodyBytes > MIB), [], 'the upstream did not receive a whole oversized body')
    const most = Math.max(0, ...echo.requests.map((r) => r.bodyBytes))
    t.ok(most <= MIB + 64 * 1024, `at most the limit (plus one chunk) was streamed: ${most} bytes`)
  })

  t.test('a small chunked body is forwarded (control)', async (t) => {
    const res = await rawSocket(h.url,
      `POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice.access}\r\nContent-Type: application/json\r\n` +
      'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n')
    t.equal(res.status, 200)
    t.ok(res.closed, 'Connection: close is honoured')
    t.equal(echo.count, 1)
    t.equal(echo.requests[0]?.body, '{"a":1}')
  })

  t.test('a head over 16 KiB: 431 on a raw socket, nothing forwarded', async (t) => {
    const res = await rawSocket(h.url,
      `GET /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice.access}\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`)
    t.equal(res.status, 431)
    t.match(res.text, /content-type: application\/problem\+json/i)
    t.equal(rawBody(res.text)?.status, 431)
    t.ok(res.closed, 'the connection is closed')
    t.equal(echo.count, 0)

    const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'v'.repeat(40)}\r\n`).join('')
    const res2 = await rawSocket(h.url,
      `GET /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice.access}\r\n${many}\r\n`)
    t.equal(res2.status, 431, 'many small headers adding up to over 16 KiB')
    t.equal(echo.count, 0)
  })

  t.test('a head of 8 KiB is fine (control)', async (t) => {
    const res = await rawPathRequest(h.url, 'GET', '/api/orders', { token: alice.access, headers: { 'x-big': 'a'.repeat(8 * 1024) } })
    t.equal(res.status, 200)
    t.equal(echo.count, 1)
  })
})

t.test('request smuggling attempts on a raw socket: 400 and never forwarded', async (t) => {
  const usersEcho = await startEcho(t)
  const ordersEcho = await startEcho(t)
  const auth = await build(t, { env: RELAXED })
  const h = await build(t, { env: { ...RELAXED, USERS_URL: usersEcho.url, ORDERS_URL: ordersEcho.url }, keyRing: auth.keyRing,
    redis: auth.redis })
  const alice = await auth.login('alice')
  const head = `POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice.access}\r\nContent-Type: application/json\r\n`
  // A second request hidden in the body: it must never reach the users upstream.
  const hidden = 'GET /api/users HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
  const chunkedEmpty = '0\r\n\r\n'

  const attempts: Record<string, string> = {
    'Content-Length with Transfer-Encoding: chunked':
      `${head}Content-Length: ${chunkedEmpty.length + hidden.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedEmpty}${hidden}`,
    'Transfer-Encoding: chunked before Content-Length': `${head}Transfer-Encoding: chunked\r\nContent-Length: ` +
      `5\r\n\r\n${chunkedEmpty}${hidden}`,
    'duplicate Content-Length, different values': `${head}Content-Length: 2\r\nContent-Length: ${2 + hidden.length}\r\n\r\n{}${hidden}`,
    'duplicate Content-Length, same value': `${head}Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}${hidden}`,
    'Content-Length list in one header': `${head}Content-Length: 2, ${2 + hidden.length}\r\n\r\n{}${hidden}`,
    'Transfer-Encoding: chunked, identity': `${head}Transfer-Encoding: chunked, identity\r\n\r\n${chunkedEmpty}${hidden}`,
    'Transfer-Encoding twice with Content-Length': `${head}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: ` +
      `5\r\n\r\n${chunkedEmpty}${hidden}`,
    'obs-fold Transfer-Encoding with Content-Length': `${head}Content-Length: 5\r\nTransfer-Encoding:\r\n ` +
      `chunked\r\n\r\n${chunkedEmpty}${hidden}`,
    'space before the colon': `${head}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n${chunkedEmpty}${hidden}`,
    'Content-Length with a sign': `${head}Content-Length: +2\r\n\r\n{}${hidden}`,
    'bare LF line endings': `POST /api/orders HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer ${alice.access}\nContent-Length: ` +
      `2\nTransfer-Encoding: chunked\n\n${chunkedEmpty}${hidden}`
  }

  for (const [name, payload] of Object.entries(attempts)) {
    t.test(name, async (t) => {
      usersEcho.reset()
      ordersEcho.reset()
      const res = await rawSocket(h.url, payload)
      t.equal(res.status, 400, `400 (got ${res.status}: ${res.text.split('\r\n')[0] ?? ''})`)
      t.equal(rawBody(res.text)?.code, 'invalid_request')
      t.match(res.text, /content-type: application\/problem\+json/i)
      t.equal((res.text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length, 1, 'exactly one answer: the hidden request is not processed')
      t.ok(res.closed, 'the connection is closed')
      t.equal(ordersEcho.count, 0, 'nothing reached the orders upstream')
      t.equal(usersEcho.count, 0, 'nothing reached the users upstream')
    })
  }

  t.test('a well-formed pipelined pair is answered twice (control)', async (t) => {
    usersEcho.reset()
    ordersEcho.reset()
    const body = '{"item":"x"}'
    const res = await rawSocket(h.url,
      `${head}Content-Length: ${body.length}\r\n\r\n${body}` +
      `GET /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice.access}\r\nConnection: close\r\n\r\n`)
    t.equal((res.text.match(/HTTP\/1\.1 200/g) ?? []).length, 2)
    t.ok(res.closed, 'closed after the second answer (Connection: close)')
    // Both reach the upstream; their order there is not fixed (the POST's body may still be on its way).
    t.same(ordersEcho.requests.map((r) => `${r.method} ${r.url}`).sort(), ['GET /api/orders', 'POST /api/orders'])
    t.equal(usersEcho.count, 0)
  })
})
