/**
 * Machine clients (docs/machine-clients.md) over real HTTP: the admin API, the client credentials grant at
 * POST /oauth/token with its RFC 6749 errors, client tokens on the proxy (scopes, identity to
 * upstreams, orders per client), deletion refusing tokens from the next request on, and Redis
 * keeping only a digest of the secret.
 */
import t, { type Test } from 'tap'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { build, type Harness } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { claimsOf, RELAXED_LIMITS } from '../helpers/auth.js'
import { startEcho } from '../helpers/echo-upstream.js'
import { basicAuth, clientToken, rawCall, registerClient, tokenCall, type RawResult,
  type RegisteredClient } from '../helpers/machine-clients.js'
import { redisUp } from '../helpers/metrics.js'
import { ROUTE_TABLE } from '../../src/proxy/route-table.js'

/** An RFC 6749 5.2 error: status, `error`, JSON (not problem+json), never cached. */
function assertOAuthError (t: Test, res: RawResult, status: number, error: string, what: string): void {
  t.equal(res.status, status, `${what}: status ${status}`)
  t.equal(res.body?.error, error, `${what}: error ${error}`)
  t.match(res.headers['content-type'], /^application\/json/, `${what}: application/json`)
  t.equal(res.headers['cache-control'], 'no-store', `${what}: Cache-Control no-store`)
  t.equal(res.headers.pragma, 'no-cache', `${what}: Pragma no-cache`)
  t.notOk('code' in (res.body ?? {}), `${what}: not problem+json`)
  if (status === 401) t.match(res.headers['www-authenticate'], /^Basic\b/, `${what}: WWW-Authenticate Basic`)
}

const GRANT: [string, string] = ['grant_type', 'client_credentials']

t.test('machine clients', async (t) => {
  const h: Harness = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000' } })
  const admin = await h.login('admin')
  const alice = await h.login('alice')
  const reader = await registerClient(h.url, admin.access, ['orders:read'], 'reporting job')
  const writer = await registerClient(h.url, admin.access, ['orders:read', 'orders:write'], 'shop backend')

  t.test('registration: the secret is shown once, has 256 bits, and Redis keeps only a digest', async (t) => {
    t.match(reader, { name: 'reporting job', scopes: ['orders:read'] })
    t.match(reader.client_id, /^[A-Za-z0-9_-]{16,64}$/)
    t.ok(Buffer.from(reader.client_secret, 'base64url').length >= 32, 'secret has at least 256 random bits')
    t.ok(!Number.isNaN(Date.parse(reader.created_at)), 'created_at is a date')
    t.not(reader.client_secret, writer.client_secret)

    const list = await h.request('GET', '/admin/clients', { token: admin.access })
    t.equal(list.status, 200)
    t.equal(list.headers.get('cache-control'), 'no-store')
    const listed = (list.body.clients as Array<Record<string, unknown>>).find((c) => c.client_id === reader.client_id)
    t.same(
      listed,
      { client_id: reader.client_id, name: 'reporting job', scopes: ['orders:read'], created_at: reader.created_at, dpop_bound: false }
    )
    t.notOk(list.text.includes(reader.client_secret) || list.text.includes('secret'), 'the list shows no secret')

    const redis = h.redis.client()
    t.teardown(() => redis.disconnect())
    const keys = await h.redis.keys('gw:*')
    const values: string[] = []
    for (const key of keys) {
      const type = await redis.type(key)
      if (type === 'hash') values.push(...Object.values(await redis.hgetall(key)))
      else if (type === 'string') values.push(String(await redis.get(key)))
    }
    t.ok(values.length > 0, 'Redis holds the registry')
    t.notOk(values.some((v) => v.includes(reader.client_secret) || v.includes(writer.client_secret)), 'no secret in Redis')
    t.ok(keys.some((k) => k === `gw:{c:${reader.client_id}}:client`), "the client's record is under its own hash tag")
  })

  t.test('the admin API needs a live admin', async (t) => {
    t.equal((await h.request('GET', '/admin/clients')).status, 401)
    const asAlice = await h.request('POST', '/admin/clients', { token: alice.access, body: { name: 'x', scopes: ['orders:read'] } })
    t.equal(asAlice.status, 403)
    t.equal(asAlice.body.code, 'forbidden')
    t.equal((await h.request('GET', '/admin/clients', { token: alice.access })).status, 403)
    t.equal((await h.request('DELETE', `/admin/clients/${reader.client_id}`, { token: alice.access })).status, 403)
    const clientTokenAsAdmin = await clientToken(h.url, writer)
    t.equal((await h.request('GET', '/admin/clients', { token: clientTokenAsAdmin })).status, 403, 'a client token is no admin')
    for (const body of [{ name: 'x' }, { name: 'x', scopes: [] }, { name: '', scopes: ['a'] }, { name: 'x', scopes: ['has space'] },
      { name: 'x', scopes: ['a', 'a'] }, { name: 'x', scopes: ['a'], extra: 1 }]) {
      const res = await h.request('POST', '/admin/clients', { token: admin.access, body })
      t.equal(res.status, 400, `invalid registration ${JSON.stringify(body)}: 400`)
      t.equal(res.body.code, 'invalid_request')
    }
    const unknown = await h.request('DELETE', '/admin/clients/no-such-client', { token: admin.access })
    t.equal(unknown.status, 404)
    t.equal(unknown.body.code, 'not_found')
  })

  t.test('token by HTTP Basic: the access token of a client, no refresh token', async (t) => {
    const res = await tokenCall(h.url, { basic: { id: writer.client_id, secret: writer.client_secret }, form: [GRANT] })
    t.equal(res.status, 200)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.headers.pragma, 'no-cache')
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(Object.keys(res.body).sort(), ['access_token', 'expires_in', 'scope', 'token_type'], 'no refresh token')
    t.equal(res.body.token_type, 'Bearer')
    t.equal(res.body.expires_in, h.config.jwt.accessTtl)
    t.equal(res.body.scope, 'orders:read orders:write', 'all of its scopes by default')
    const { payload } = await jwtVerify(res.body.access_token, createLocalJWKSet(h.keyRing.publicJwks),
      { issuer: 'auth-gateway', audience: 'api' })
    t.equal(payload.sub, `client:${writer.client_id}`)
    t.equal(payload.client_id, writer.client_id)
    t.equal(payload.scope, 'orders:read orders:write')
    t.equal(payload.token_type, 'access')
    for (const absent of ['username', 'roles', 'sid']) t.notOk(absent in payload, `no ${absent}`)
  })

  t.test('token by body credentials, and scope narrowing', async (t) => {
    const res = await tokenCall(h.url, { form: [GRANT, ['client_id', writer.client_id], ['client_secret', writer.client_secret],
      ['scope', 'orders:read']] })
    t.equal(res.status, 200)
    t.equal(res.body.scope, 'orders:read')
    t.equal(claimsOf(res.body.access_token).scope, 'orders:read')
    const sameIdInBody = await tokenCall(h.url, { basic: { id: reader.client_id, secret: reader.client_secret },
      form: [GRANT, ['client_id', reader.client_id]] })
    t.equal(sameIdInBody.status, 200, 'Basic plus the same client_id in the body (RFC 6749 3.2.1)')
    const emptyScope = await tokenCall(h.url, { basic: { id: reader.client_id, secret: reader.client_secret },
      form: [GRANT, ['scope', '']] })
    t.equal(emptyScope.body.scope, 'orders:read', 'an empty parameter counts as omitted (RFC 6749 3.1)')
  })

  t.test('bad requests get their RFC 6749 error, never a 500', async (t) => {
    const basic = { id: reader.client_id, secret: reader.client_secret }
    assertOAuthError(t, await tokenCall(h.url, { basic,
      form: [['grant_type', 'password'], ['username', 'alice'], ['password', 'alice-password']] }), 400, 'unsupported_grant_type',
        'password grant')
    assertOAuthError(t, await tokenCall(h.url, { basic, form: [['grant_type', 'refresh_token']] }), 400, 'unsupported_grant_type',
      'refresh grant')
    assertOAuthError(t, await tokenCall(h.url, { basic, form: [] }), 400, 'invalid_request', 'no grant_type')
    assertOAuthError(t, await tokenCall(h.url, { basic, form: [GRANT, GRANT] }), 400, 'invalid_request', 'grant_type twice')
    assertOAuthError(t, await tokenCall(h.url, { basic, form: [GRANT, ['scope', 'orders:read'], ['scope', 'orders:read']] }), 400,
      'invalid_request', 'scope twice')
    assertOAuthError(t, await tokenCall(h.url, { form: [GRANT, ['client_id', reader.client_id], ['client_id', reader.client_id],
      ['client_secret', reader.client_secret]] }), 400, 'invalid_request', 'client_id twice')
    assertOAuthError(t, await rawCall(h.url, 'POST', '/oauth/token',
      { body: JSON.stringify({ grant_type: 'client_credentials' }), contentType: 'application/json',
        headers: { authorization: basicAuth(basic.id, basic.secret) } }), 400, 'invalid_request', 'JSON body')
    assertOAuthError(t, await rawCall(h.url, 'POST', '/oauth/token',
      { body: 'grant_type=client_credentials', contentType: 'text/plain', headers: { authorization: basicAuth(basic.id, basic.secret) } }),
        400, 'invalid_request', 'text body')
    assertOAuthError(t, await rawCall(h.url, 'POST', '/oauth/token', { headers: { authorization: basicAuth(basic.id, basic.secret) } }),
      400, 'invalid_request', 'no body')
    assertOAuthError(t, await rawCall(h.url, 'POST', '/oauth/token',
      { body: 'grant_type=client_credentials&pad=' + 'x'.repeat(64 * 1024),
        headers: { authorization: basicAuth(basic.id, basic.secret) } }), 413, 'invalid_request', 'oversized body')
    assertOAuthError(t, await rawCall(h.url, 'POST', '/oauth/token',
      { body: 'grant_type=client_credentials&pad=' + 'x'.repeat(2 * 1024 * 1024),
        headers: { authorization: basicAuth(basic.id, basic.secret) } }), 413, 'invalid_request', 'body over the gateway limit')
    assertOAuthError(t, await tokenCall(h.url, { basic, form: [GRANT, ['client_secret', reader.client_secret]] }), 400, 'invalid_request',
      'Basic and a body secret')
    assertOAuthError(t, await tokenCall(h.url, { basic,
      form: [GRANT, ['client_id', writer.client_id], ['client_secret', writer.client_secret]] }), 400, 'invalid_request',
        'two clients at once')
    assertOAuthError(t, await tokenCall(h.url, { basic, form: [GRANT, ['scope', 'orders:write']] }), 400, 'invalid_scope',
      'a scope outside the client\'s')
    assertOAuthError(t, await tokenCall(h.url, { basic, form: [GRANT, ['scope', 'orders:read "x"']] }), 400, 'invalid_scope',
      'a malformed scope')
    assertOAuthError(t, await tokenCall(h.url, { basic: { id: reader.client_id, secret: writer.client_secret }, form: [GRANT] }), 401,
      'invalid_client', 'wrong secret')
    assertOAuthError(t, await tokenCall(h.url, { basic: { id: 'no-such-client', secret: reader.client_secret }, form: [GRANT] }), 401,
      'invalid_client', 'unknown client')
    assertOAuthError(t, await tokenCall(h.url, { basic: { id: 'bad id ü %', secret: 'x' }, form: [GRANT] }), 401, 'invalid_client',
      'a client id outside the alphabet')
    assertOAuthError(t, await tokenCall(h.url, { form: [GRANT] }), 401, 'invalid_client', 'no client authentication')
    assertOAuthError(t, await tokenCall(h.url, { form: [GRANT, ['client_id', reader.client_id]] }), 401, 'invalid_client',
      'client_id without secret')
    assertOAuthError(t, await tokenCall(h.url, { form: [GRANT], headers: { authorization: `Bearer ${alice.access}` } }), 401,
      'invalid_client', 'a Bearer token instead of client authentication')
    assertOAuthError(t, await tokenCall(h.url, { form: [GRANT], headers: { authorization: 'Basic %%%' } }), 401, 'invalid_client',
      'malformed Basic')
    const get = await rawCall(h.url, 'GET', '/oauth/token')
    t.equal(get.status, 404, 'GET is no route')
  })

  t.test('on the proxy: scopes decide, clients reach nothing else', async (t) => {
    const readToken = await clientToken(h.url, reader)
    const writeToken = await clientToken(h.url, writer)
    const narrowed = await clientToken(h.url, writer, 'orders:read')

    t.equal((await h.request('GET', '/api/orders', { token: readToken })).status, 200, 'orders:read lists')
    const denied = await h.request('POST', '/api/orders', { token: readToken, body: { item: 'book' } })
    t.equal(denied.status, 403, 'orders:read does not create')
    t.equal(denied.body.code, 'forbidden')
    t.equal((await h.request('POST', '/api/orders', { token: narrowed, body: { item: 'book' } })).status, 403,
      'a token narrowed to orders:read does not create either')
    const created = await h.request('POST', '/api/orders', { token: writeToken, body: { item: 'crate', quantity: 2 } })
    t.equal(created.status, 201, 'orders:write creates')
    t.equal(created.body.user_id, `client:${writer.client_id}`)
    t.equal(created.body.client_id, writer.client_id)
    t.equal((await h.request('GET', `/api/orders/${created.body.id as string}`, { token: narrowed })).status, 200,
      'orders:read reads one order')
    t.equal((await h.request('DELETE', `/api/orders/${created.body.id as string}`, { token: writeToken })).status, 403,
      'no scope maps DELETE')

    for (const path of ['/api/users/me', '/api/users', '/api/users/1001']) {
      const res = await h.request('GET', path, { token: writeToken })
      t.equal(res.status, 403, `${path}: 403 for a client`)
    }
    for (const [method, path] of [['GET', '/auth/sessions'], ['POST', '/auth/logout-all']] as const) {
      t.equal((await h.request(method, path, { token: writeToken })).status, 403, `${method} ${path}: not for clients`)
    }

    // Orders per client, as per user.
    const aliceOrder = await h.request('POST', '/api/orders', { token: alice.access, body: { item: 'pen' } })
    t.equal(aliceOrder.status, 201, 'users keep working')
    const writerList = (await h.request('GET', '/api/orders', { token: writeToken })).body.orders as Array<{ id: string }>
    t.same(writerList.map((o) => o.id), [created.body.id], 'the writer sees its own orders only')
    t.same((await h.request('GET', '/api/orders', { token: readToken })).body.orders, [], 'another client sees none of them')
    t.equal((await h.request('GET', `/api/orders/${aliceOrder.body.id as string}`, { token: readToken })).status, 404,
      "a user's order is another caller's")
    t.notOk(((await h.request('GET', '/api/orders', { token: alice.access })).body.orders as Array<{ id: string }>).some((o) =>
      o.id === created.body.id), "alice does not see the client's order")
    t.equal((await h.request('GET', '/api/users', { token: admin.access })).status, 200, 'admins keep their routes')
  })

  t.test('deleting a client refuses its tokens from the next request on', async (t) => {
    const doomed = await registerClient(h.url, admin.access, ['orders:read'], 'doomed')
    const token = await clientToken(h.url, doomed)
    t.equal((await h.request('GET', '/api/orders', { token })).status, 200)
    const del = await h.request('DELETE', `/admin/clients/${doomed.client_id}`, { token: admin.access })
    t.equal(del.status, 204)
    const after = await h.request('GET', '/api/orders', { token })
    t.equal(after.status, 401)
    t.equal(after.body.code, 'token_revoked')
    assertOAuthError(t, await tokenCall(h.url, { basic: { id: doomed.client_id, secret: doomed.client_secret }, form: [GRANT] }), 401,
      'invalid_client', 'token request of a deleted client')
    t.equal((await h.request('DELETE', `/admin/clients/${doomed.client_id}`, { token: admin.access })).status, 404, 'deleted once')
    const list = await h.request('GET', '/admin/clients', { token: admin.access })
    t.notOk((list.body.clients as Array<{ client_id: string }>).some((c) => c.client_id === doomed.client_id), 'no longer listed')
    t.same(await h.redis.keys(`gw:{c:${doomed.client_id}}:client`), [], 'its record is gone')
  })
})

t.test('what an upstream receives from a client', async (t) => {
  const echo = await startEcho(t)
  const auth = await build(t, { env: RELAXED_LIMITS })
  const h = await build(t, { env: { ...RELAXED_LIMITS, ORDERS_URL: echo.url }, keyRing: auth.keyRing, redis: auth.redis })
  const admin = await auth.login('admin')
  const client: RegisteredClient = await registerClient(auth.url, admin.access, ['orders:read', 'orders:write'])
  const token = await clientToken(h.url, client)

  const res = await rawCall(h.url, 'GET', '/api/orders', {
    headers: { authorization: `Bearer ${token}`, 'x-client-id': 'spoofed', 'x-client-scopes': 'admin', x_client_id: 'spoofed',
      'x-user-id': '1003' }
  })
  t.equal(res.status, 200)
  const seen = echo.requests.at(-1)!
  t.equal(seen.headers['x-client-id'], client.client_id)
  t.equal(seen.headers['x-client-scopes'], 'orders:read,orders:write')
  t.equal(seen.rawHeaders.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'x-client-id').length, 1,
    'one X-Client-Id line: the spoofed one was removed')
  t.notOk('x_client_id' in seen.headers, 'the underscore spelling is removed too')
  for (const name of ['x-user-id', 'x-user-name', 'x-user-roles', 'authorization']) t.notOk(name in seen.headers, `no ${name}`)
  const { payload } = await jwtVerify(seen.headers['x-gateway-assertion'] as string, createLocalJWKSet(h.keyRing.publicJwks),
    { audience: 'orders', issuer: 'auth-gateway' })
  t.equal(payload.sub, `client:${client.client_id}`)
  t.equal(payload.client_id, client.client_id)
  t.equal(payload.scope, 'orders:read orders:write')
  t.same(payload.roles, [])
  t.notOk('username' in payload, 'no username in the assertion')
})

t.test('a client reaches a scoped route of either limit class; a user too', async (t) => {
  // The proxy authenticates users and clients alike whether the route counts per caller (api) or per
  // client IP (public): the route's scopes or roles decide, not the limit class.
  const echo = await startEcho(t)
  const auth = await build(t, { env: RELAXED_LIMITS })
  const h = await build(t, {
    env: { ...RELAXED_LIMITS, ORDERS_URL: echo.url },
    keyRing: auth.keyRing,
    redis: auth.redis,
    routes: [...ROUTE_TABLE, { path: '/api/catalog', upstream: 'orders', limit: 'public', scopes: { GET: ['orders:read'] } }]
  })
  const admin = await auth.login('admin')
  const alice = await auth.login('alice')
  const reader = await registerClient(auth.url, admin.access, ['orders:read'])
  const writer = await registerClient(auth.url, admin.access, ['orders:write'])
  const asReader = await rawCall(h.url, 'GET', '/api/catalog', { headers: { authorization: `Bearer ${await clientToken(h.url, reader)}` } })
  t.equal(asReader.status, 200, 'a client with the scope: 200')
  t.equal(echo.requests.at(-1)?.headers['x-client-id'], reader.client_id, 'forwarded as the client')
  const asWriter = await rawCall(h.url, 'GET', '/api/catalog', { headers: { authorization: `Bearer ${await clientToken(h.url, writer)}` } })
  t.equal(asWriter.status, 403, 'a client without the scope: 403')
  const asUser = await rawCall(h.url, 'GET', '/api/catalog', { headers: { authorization: `Bearer ${alice.access}` } })
  t.equal(asUser.status, 200, 'a user: 200')
  t.equal(echo.requests.at(-1)?.headers['x-user-id'], '1001', 'forwarded as the user')
  t.equal(echo.count, 2, 'the refused client reached nothing')
})

t.test('Redis away: the token endpoint and client tokens fail closed, then recover', async (t) => {
  const h = await build(t, { env: RELAXED_LIMITS })
  const admin = await h.login('admin')
  const client = await registerClient(h.url, admin.access, ['orders:read'])
  const token = await clientToken(h.url, client)
  await h.redis.kill()

  const tokenRes = await tokenCall(h.url, { basic: { id: client.client_id, secret: client.client_secret }, form: [GRANT] })
  assertOAuthError(t, tokenRes, 503, 'temporarily_unavailable', 'token request without Redis')
  t.ok(Number(tokenRes.headers['retry-after']) > 0, 'Retry-After')
  const proxied = await h.request('GET', '/api/orders', { token })
  t.equal(proxied.status, 503, 'client token without Redis: 503')
  t.equal(proxied.body.code, 'store_unavailable')
  const listed = await h.request('GET', '/admin/clients', { token: admin.access })
  t.equal(listed.status, 503, 'admin list without Redis: 503')

  await h.redis.restart()
  // The restarted Redis is empty: the registry is gone with it, so the client's token is refused.
  await waitFor(() => redisUp(h.url), 'gateway reaches Redis again')
  const after = await h.request('GET', '/api/orders', { token })
  t.equal(after.status, 401, 'a client lost with the Redis data is refused, never let through')
})

t.test('the OpenAPI document describes the machine-client routes', async (t) => {
  const h = await build(t, { env: RELAXED_LIMITS })
  const doc = (await h.request('GET', '/docs/json')).body
  const token = doc.paths['/oauth/token'].post
  t.ok(token.requestBody.content['application/x-www-form-urlencoded'], 'the token endpoint takes a form')
  t.same(Object.keys(token.responses).sort(), ['200', '400', '401', '413', '429', '503'])
  t.ok(token.responses['401'].content['application/json'].schema.properties.error, 'RFC 6749 error schema')
  t.ok(doc.paths['/admin/clients'].post.responses['201'], 'POST /admin/clients 201')
  t.ok(doc.paths['/admin/clients'].get.responses['200'], 'GET /admin/clients 200')
  t.ok(doc.paths['/admin/clients/{client_id}'].delete.responses['204'], 'DELETE /admin/clients/{client_id} 204')
  t.ok(doc.components.securitySchemes.clientBasic, 'the Basic scheme of clients')
})

t.test('POST /auth/verify knows client tokens', async (t) => {
  const h = await build(t, { env: RELAXED_LIMITS })
  const admin = await h.login('admin')
  const client = await registerClient(h.url, admin.access, ['orders:read'])
  const token = await clientToken(h.url, client)
  const live = await h.request('POST', '/auth/verify', { body: { token } })
  t.equal(live.status, 200)
  t.same(live.body, { valid: true, token_type: 'access', sub: `client:${client.client_id}`, exp: claimsOf(token).exp })
  t.equal((await h.request('DELETE', `/admin/clients/${client.client_id}`, { token: admin.access })).status, 204)
  const revoked = await h.request('POST', '/auth/verify', { body: { token } })
  t.equal(revoked.status, 401)
  t.equal(revoked.body.code, 'token_revoked')
  const tampered = await h.request('POST', '/auth/verify', { body: { token: token.slice(0, -4) + 'AAAA' } })
  t.equal(tampered.status, 401)
  t.equal(tampered.body.code, 'token_invalid')
})
