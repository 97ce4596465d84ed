/**
 * What an upstream receives (docs/upstreams.md): the client's credentials and any identity or
 * gateway header it tried to set never arrive; the gateway's verified identity, the request id,
 * X-Forwarded-* and a signed X-Gateway-Assertion do. And the stubs refuse anything without a
 * valid assertion, so going around the gateway gets nothing.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { createLocalJWKSet, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT, type CryptoKey } from 'jose'
import { build, httpRequest } from '../helper.js'
import { startEcho, type EchoRequest } from '../helpers/echo-upstream.js'
import { rawPathRequest } from '../helpers/raw-http.js'

const RELAXED: Record<string, string> = { LOGIN_IP_LIMIT: '10000', API_USER_LIMIT: '10000', PUBLIC_IP_LIMIT: '10000' }

const SPOOFED: Record<string, string> = {
  'x-user-id': '1003',
  'x-user-name': 'admin',
  'x-user-roles': 'admin',
  'x-user-email': 'admin@example.com',
  'x-gateway-assertion': 'garbage.garbage.garbage',
  'x-gateway-foo': 'bar',
  'x-http-method-override': 'DELETE',
  'x-method-override': 'DELETE',
  'x-http-method': 'DELETE',
  'x-original-url': '/api/users',
  'x-rewrite-url': '/api/users',
  cookie: 'refresh_token=stolen; session=abc',
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'https',
  'proxy-authorization': 'Basic Zm9vOmJhcg=='
}

/** How many header lines of that name arrived. */
function linesOf (req: EchoRequest, name: string): number {
  return req.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === name).length
}

function allValues (headers: IncomingHttpHeaders): string {
  return Object.values(headers).flat().join('\n')
}

t.test('headers an upstream receives', async (t) => {
  const usersEcho = await startEcho(t)
  const ordersEcho = await startEcho(t)
  // Logins need the real users stub: they go through a first gateway; a second one with the same
  // keys and Redis forwards to the echoes.
  const auth = await build(t, { env: RELAXED })
  const h = await build(t, { env: { ...RELAXED, USERS_URL: usersEcho.url, ORDERS_URL: ordersEcho.url }, keyRing: auth.keyRing,
    redis: auth.redis })
  const jwks = createLocalJWKSet(h.keyRing.publicJwks)
  const alice = await auth.login('alice')
  const { port } = new URL(h.url)
  t.beforeEach(() => { usersEcho.reset(); ordersEcho.reset() })

  t.test('spoofed identity, credentials and method overrides never arrive', async (t) => {
    const res = await rawPathRequest(h.url, 'GET', '/api/orders/check?q=1', {
      token: alice.access,
      headers: { ...SPOOFED, 'x-request-id': 'client-req-123' }
    })
    t.equal(res.status, 200)
    t.equal(ordersEcho.count, 1)
    const got = ordersEcho.requests[0]!
    t.equal(got.method, 'GET', 'the method is the client\'s real one')
    t.equal(got.url, '/api/orders/check?q=1')
    for (const name of ['authorization', 'cookie', 'proxy-authorization', 'x-user-email', 'x-gateway-foo',
      'x-http-method-override', 'x-method-override', 'x-http-method', 'x-original-url', 'x-rewrite-url']) {
      t.equal(got.headers[name], undefined, `${name} is stripped`)
    }
    t.notOk(allValues(got.headers).includes(alice.access), 'the bearer token does not arrive in any header')
    t.notOk(allValues(got.headers).includes('garbage'), 'the forged assertion does not arrive')
    t.notOk(allValues(got.headers).includes('stolen'), 'the cookie does not arrive')
    t.notOk(allValues(got.headers).includes('6.6.6.6'), 'the untrusted X-Forwarded-For does not arrive')
    t.notOk(allValues(got.headers).includes('evil.example'), 'the untrusted X-Forwarded-Host does not arrive')

    t.equal(got.headers['x-user-id'], '1001')
    t.equal(got.headers['x-user-name'], 'alice')
    t.equal(got.headers['x-user-roles'], 'user')
    for (const name of ['x-user-id', 'x-user-name', 'x-user-roles', 'x-gateway-assertion', 'x-request-id', 'x-forwarded-for']) {
      t.equal(linesOf(got, name), 1, `exactly one ${name} line`)
    }
    t.equal(got.headers['x-request-id'], 'client-req-123', 'a sane client request id is kept')
    t.equal(res.headers['x-request-id'], 'client-req-123', 'and echoed in the response')
    t.equal(got.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is the peer: the client\'s is not trusted without TRUST_PROXY')
    t.equal(got.headers['x-forwarded-proto'], 'http')
    t.equal(got.headers['x-forwarded-host'], `127.0.0.1:${port}`)
  })

  t.test('the assertion is an ES256 JWT for the upstream, at most 60 s, with sub, roles and jti', async (t) => {
    const res = await rawPathRequest(h.url, 'GET', '/api/orders', { token: alice.access })
    t.equal(res.status, 200)
    const assertion = ordersEcho.requests[0]!.headers['x-gateway-assertion'] as string
    t.equal(decodeProtectedHeader(assertion).alg, 'ES256')
    const { payload, protectedHeader } = await jwtVerify(assertion, jwks,
      { audience: 'orders', issuer: h.config.jwt.issuer, algorithms: ['ES256'] })
    t.equal(protectedHeader.kid, h.keyRing.signing.kid)
    t.equal(payload.sub, '1001')
    t.same(payload.roles, ['user'])
    t.type(payload.jti, 'string')
    t.ok((payload.jti as string).length > 0)
    t.type(payload.iat, 'number')
    t.type(payload.exp, 'number')
    t.ok(payload.exp! - payload.iat! <= 60, `exp - iat = ${payload.exp! - payload.iat!} <= 60`)
    t.ok(payload.exp! - Math.floor(Date.now() / 1000) <= 60, 'expires at most 60 s from now')
    await t.rejects(jwtVerify(assertion, jwks, { audience: 'users' }), 'not valid for the users upstream')
    t.equal(payload.token_type, undefined, 'not an access token')

    const me = await rawPathRequest(h.url, 'GET', '/api/users/me', { token: alice.access })
    t.equal(me.status, 200)
    const toUsers = usersEcho.requests[0]!.headers['x-gateway-assertion'] as string
    const verified = await jwtVerify(toUsers, jwks, { audience: 'users', algorithms: ['ES256'] })
    t.equal(verified.payload.sub, '1001')
    await t.rejects(jwtVerify(toUsers, jwks, { audience: 'orders' }), 'not valid for the orders upstream')
  })

  t.test('Connection naming gateway headers does not strip them', async (t) => {
    const res = await rawPathRequest(h.url, 'GET', '/api/orders', {
      token: alice.access,
      headers: { connection: 'close, X-User-Id, X-Gateway-Assertion, X-User-Roles, X-Request-Id, X-Forwarded-For', 'x-user-id': '1003' }
    })
    t.equal(res.status, 200)
    const got = ordersEcho.requests[0]!
    t.equal(got.headers['x-user-id'], '1001')
    t.equal(got.headers['x-user-roles'], 'user')
    t.type(got.headers['x-request-id'], 'string')
    t.equal(got.headers['x-forwarded-for'], '127.0.0.1')
    const assertion = got.headers['x-gateway-assertion']
    t.type(assertion, 'string')
    const { payload } = await jwtVerify(assertion as string, jwks, { audience: 'orders' })
    t.equal(payload.sub, '1001')
    t.notOk(String(got.headers.connection ?? '').toLowerCase().includes('x-user-id'), 'the client\'s Connection list does not travel')
  })

  t.test('an ordinary header named in Connection is hop-by-hop and dropped', async (t) => {
    await rawPathRequest(h.url, 'GET', '/api/orders',
      { token: alice.access, headers: { connection: 'x-hop', 'x-hop': '1', 'x-kept': '2' } })
    const got = ordersEcho.requests[0]!
    t.equal(got.headers['x-hop'], undefined)
    t.equal(got.headers['x-kept'], '2', 'other client headers travel')
  })

  t.test('duplicate and mixed-case spoofed identity headers are all stripped', async (t) => {
    await rawPathRequest(h.url, 'GET', '/api/orders', {
      token: alice.access,
      headers: { 'X-USER-ID': ['1003', '1002'], 'X-User-Roles': ['admin', 'user'], 'X-GATEWAY-ASSERTION': ['a', 'b'] }
    })
    const got = ordersEcho.requests[0]!
    t.equal(got.headers['x-user-id'], '1001')
    t.equal(got.headers['x-user-roles'], 'user')
    t.equal(linesOf(got, 'x-user-id'), 1)
    t.equal(linesOf(got, 'x-user-roles'), 1)
    t.equal(linesOf(got, 'x-gateway-assertion'), 1)
  })

  t.test('underscore spellings of identity and gateway headers are stripped too (CGI-style upstreams read them as dashes)', async (t) => {
    await rawPathRequest(h.url, 'GET', '/api/orders', {
      token: alice.access,
      headers: { X_User_Id: '1003', 'x-user_roles': 'admin', x_gateway_assertion: 'forged', X_Forwarded_For: '6.6.6.6',
        x_http_method_override: 'DELETE' }
    })
    const got = ordersEcho.requests[0]!
    for (const name of ['x_user_id', 'x-user_roles', 'x_gateway_assertion', 'x_forwarded_for', 'x_http_method_override']) {
      t.equal(got.headers[name], undefined, `${name} is stripped`)
    }
    t.equal(got.headers['x-user-id'], '1001')
    t.equal(got.headers['x-user-roles'], 'user')
  })

  t.test('an insane X-Request-Id is replaced by a generated one, the same upstream and in the answer', async (t) => {
    for (const given of ['a b c', 'x'.repeat(200), '../../etc/passwd', '"><script>', 'ok\ttab']) {
      ordersEcho.reset()
      const res = await rawPathRequest(h.url, 'GET', '/api/orders', { token: alice.access, headers: { 'x-request-id': given } })
      const sent = ordersEcho.requests[0]!.headers['x-request-id']
      t.not(sent, given, JSON.stringify(given))
      t.match(sent, /^[A-Za-z0-9._:-]{1,128}$/)
      t.equal(res.headers['x-request-id'], sent)
    }
  })

  t.test('X-Request-Id is echoed on gateway errors too', async (t) => {
    for (const [path, status] of [['/api/nothing', 404], ['/api/orders', 401]] as const) {
      const res = await httpRequest(h.url, 'GET', path, { headers: { 'x-request-id': 'err-req-1' } })
      t.equal(res.status, status)
      t.equal(res.headers.get('x-request-id'), 'err-req-1')
      t.equal(res.body.request_id, 'err-req-1')
    }
  })

  t.test('a POST body travels unchanged with its content type', async (t) => {
    const body = JSON.stringify({ item: 'book', quantity: 2 })
    const res = await rawPathRequest(h.url, 'POST', '/api/orders', { token: alice.access, body })
    t.equal(res.status, 200)
    const got = ordersEcho.requests[0]!
    t.equal(got.method, 'POST')
    t.equal(got.body, body)
    t.match(got.headers['content-type'], /^application\/json/)
  })
})

t.test('headers the client receives from an upstream answer', async (t) => {
  const echo = await startEcho(t, { responseHeaders: { 'x-request-id': 'upstream-id', 'x-upstream': 'yes',
    connection: 'keep-alive, x-upstream-hop', 'x-upstream-hop': '1', 'keep-alive': 'timeout=600' } })
  const auth = await build(t, { env: RELAXED })
  const h = await build(t, { env: { ...RELAXED, ORDERS_URL: echo.url }, keyRing: auth.keyRing, redis: auth.redis })
  const alice = await auth.login('alice')

  const res = await rawPathRequest(h.url, 'GET', '/api/orders',
    { token: alice.access, headers: { 'x-request-id': 'client-id-7', connection: 'close' } })
  t.equal(res.status, 200)
  t.equal(res.headers['x-upstream'], 'yes', 'ordinary answer headers travel')
  t.equal(res.headers['x-request-id'], 'client-id-7', 'the gateway\'s request id is echoed, not the upstream\'s')
  t.equal(res.headers['x-upstream-hop'], undefined, 'a header the upstream named in Connection is hop-by-hop')
  t.equal(res.headers['keep-alive'], undefined, 'the upstream\'s Keep-Alive does not travel')
  t.equal(res.headers.connection, 'close', 'the client\'s Connection: close is honoured')
})

t.test('the stubs answer 401 to anything without a valid assertion', async (t) => {
  const h = await build(t, { env: RELAXED })
  const usersUrl = `http://127.0.0.1:${(h.users.server.address() as { port: number }).port}`
  const ordersUrl = `http://127.0.0.1:${(h.orders.server.address() as { port: number }).port}`
  const issuer = h.config.jwt.issuer
  const gatewayKey = h.keyRing.signing

  interface SignOptions { key?: CryptoKey, kid?: string, aud?: string, iat?: number, exp?: number, iss?: string, jti?: boolean }
  async function assertion (o: SignOptions = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    const jwt = new SignJWT({ roles: ['user'], username: 'alice', ...(o.jti === false ? {} : { jti: randomUUID() }) })
      .setProtectedHeader({ alg: 'ES256', kid: o.kid ?? gatewayKey.kid, typ: 'JWT' })
      .setSubject('1001')
      .setIssuer(o.iss ?? issuer)
      .setAudience(o.aud ?? 'users')
      .setIssuedAt(o.iat ?? now)
      .setExpirationTime(o.exp ?? now + 60)
    return jwt.sign(o.key ?? gatewayKey.privateKey)
  }
  const direct = async (base: string, path: string, token?: string): Promise<number> =>
    (await httpRequest(base, 'GET', path, token === undefined ? {} : { headers: { 'x-gateway-assertion': token } })).status

  t.test('a valid assertion is accepted (control)', async (t) => {
    const res = await httpRequest(usersUrl, 'GET', '/api/users/me', { headers: { 'x-gateway-assertion': await assertion() } })
    t.equal(res.status, 200)
    t.equal(res.body.username, 'alice')
    t.equal(await direct(ordersUrl, '/api/orders', await assertion({ aud: 'orders' })), 200)
  })

  t.test('no assertion: 401, even with spoofed identity headers', async (t) => {
    for (const path of ['/api/users/me', '/api/users', '/api/users/1001']) t.equal(await direct(usersUrl, path), 401, path)
    t.equal(await direct(ordersUrl, '/api/orders'), 401)
    const spoofed = await httpRequest(usersUrl, 'GET', '/api/users', { headers: { 'x-user-id': '1003', 'x-user-roles': 'admin' } })
    t.equal(spoofed.status, 401)
    const alice = await h.login('alice')
    t.equal((await httpRequest(usersUrl, 'GET', '/api/users/me', { token: alice.access })).status, 401, 'an access token is no assertion')
    t.equal(await direct(usersUrl, '/api/users/me', alice.access), 401, 'an access token in the assertion header is refused (aud api)')
  })

  t.test('an assertion signed by another key: 401', async (t) => {
    const { privateKey } = await generateKeyPair('ES256')
    t.equal(await direct(usersUrl, '/api/users/me', await assertion({ key: privateKey })), 401, 'foreign key, gateway kid')
    t.equal(await direct(usersUrl, '/api/users/me', await assertion({ key: privateKey, kid: 'other' })), 401, 'foreign key, foreign kid')
  })

  t.test('an assertion for another upstream: 401', async (t) => {
    t.equal(await direct(usersUrl, '/api/users/me', await assertion({ aud: 'orders' })), 401)
    t.equal(await direct(ordersUrl, '/api/orders', await assertion({ aud: 'users' })), 401)
    t.equal(await direct(usersUrl, '/api/users/me', await assertion({ aud: 'api' })), 401)
  })

  t.test('an expired, too long-lived, foreign-issuer or jti-less assertion: 401', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    t.equal(await direct(usersUrl, '/api/users/me', await assertion({ iat: now - 120, exp: now - 60 })), 401, 'expired')
    t.equal(await direct(usersUrl, '/api/users/me', await assertion({ iat: now, exp: now + 3600 })), 401, 'lives an hour')
    t.equal(await direct(usersUrl, '/api/users/me', await assertion({ iat: now - 300, exp: now + 30 })), 401, 'issued too long ago')
    t.equal(await direct(usersUrl, '/api/users/me', await assertion({ iss: 'someone-else' })), 401, 'foreign issuer')
    t.equal(await direct(usersUrl, '/api/users/me', await assertion({ jti: false })), 401, 'no jti')
  })

  t.test('an unsigned (alg none) assertion: 401', async (t) => {
    const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
    const now = Math.floor(Date.now() / 1000)
    const none =
      `${enc({ alg: 'none', typ: 'JWT' })}.` +
      `${enc({ sub: '1001', roles: ['admin'], aud: 'users', iss: issuer, iat: now, exp: now + 60, jti: 'x' })}.`
    t.equal(await direct(usersUrl, '/api/users', none), 401)
  })

  t.test('/healthz needs no assertion', async (t) => {
    t.equal(await direct(usersUrl, '/healthz'), 200)
  })
})

t.test('X-Forwarded-For behind a trusted proxy', async (t) => {
  const ordersEcho = await startEcho(t)
  const auth = await build(t, { env: RELAXED })
  const alice = await auth.login('alice')
  const forwardedFor = async (trustProxy: string, sent: string): Promise<string | string[] | undefined> => {
    const h = await build(t, { env: { ...RELAXED, ORDERS_URL: ordersEcho.url, TRUST_PROXY: trustProxy }, keyRing: auth.keyRing,
      redis: auth.redis })
    ordersEcho.reset()
    t.equal((await h.request('GET', '/api/orders', { token: alice.access, headers: { 'x-forwarded-for': sent } })).status, 200)
    return ordersEcho.requests[0]?.headers['x-forwarded-for']
  }
  t.equal(await forwardedFor('127.0.0.1', '203.0.113.7'), '203.0.113.7, 127.0.0.1',
    'a trusted peer: the client it reports comes first, then the peer')
  t.equal(await forwardedFor('127.0.0.1', '6.6.6.6, 203.0.113.7'), '203.0.113.7, 127.0.0.1',
    'only the hops the trusted peer vouches for: what the client wrote before is dropped')
  t.equal(await forwardedFor('127.0.0.1, 203.0.113.0/24', '6.6.6.6, 203.0.113.7'), '6.6.6.6, 203.0.113.7, 127.0.0.1',
    'a chain of trusted proxies')
  t.equal(await forwardedFor('10.0.0.0/8', '203.0.113.7'), '127.0.0.1', 'an untrusted peer: its X-Forwarded-For is ignored')
  t.equal(await forwardedFor('1', '6.6.6.6, 203.0.113.7'), '203.0.113.7, 127.0.0.1', 'a hop count: one proxy in front is trusted')
})
