/**
 * The OAuth metadata document (RFC 8414) and token introspection (RFC 7662, RFC 9701) over real
 * HTTP: every error of the endpoint, and for each kind of token (a user's access and refresh
 * token, a machine client's, a delegated one, a forged, an expired, a revoked one) that `active`
 * is exactly what the proxy decides at that moment.
 */
import t, { type Test } from 'tap'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose'
import { build, type Harness } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { waitFor } from '../helpers/redis-server.js'
import { clientToken, registerClient, type RawResult } from '../helpers/machine-clients.js'
import { exchange, formPost, introspect } from '../helpers/oauth-standard.js'

function assertOAuthError (t: Test, res: RawResult, status: number, error: string, what: string): void {
  t.equal(res.status, status, `${what}: status ${status}`)
  t.equal(res.body?.error, error, `${what}: error ${error}`)
  t.match(res.headers['content-type'], /^application\/json/, `${what}: application/json`)
  t.equal(res.headers['cache-control'], 'no-store', `${what}: no-store`)
  if (status === 401) t.match(res.headers['www-authenticate'], /^Basic\b/, `${what}: WWW-Authenticate Basic`)
}

t.test('metadata document', async (t) => {
  const h: Harness = await build(t, { env: RELAXED_LIMITS })
  const res = await h.request('GET', '/.well-known/oauth-authorization-server')
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const m = res.body
  t.equal(m.issuer, 'auth-gateway', 'issuer is JWT_ISSUER')
  t.equal(m.token_endpoint, `${h.url}/oauth/token`, 'endpoints from the request\'s scheme and host')
  t.equal(m.jwks_uri, `${h.url}/.well-known/jwks.json`)
  t.equal(m.introspection_endpoint, `${h.url}/oauth/introspect`)
  t.equal(m.revocation_endpoint, `${h.url}/oauth/revoke`)
  t.same(m.grant_types_supported, ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'])
  t.same(m.token_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post'])
  t.same(m.introspection_signing_alg_values_supported, ['ES256'])
  t.same(
    m.scopes_supported,
    ['orders:read', 'orders:write', 'tokens:introspect', 'token-exchange'],
    'the route table\'s scopes and the OAuth endpoints\''
  )
  t.ok((m.dpop_signing_alg_values_supported as string[]).includes('ES256'), 'DPoP proofs: ES256 among the algorithms (docs/dpop.md)')
  // Every advertised endpoint answers at that URL.
  t.equal((await fetch(m.jwks_uri)).status, 200, 'jwks_uri answers')
  t.equal((await fetch(m.introspection_endpoint, { method: 'POST' })).status, 400, 'introspection_endpoint is there')

  t.test('PUBLIC_URL', async (t) => {
    const p = await build(t, { redis: h.redis, keyRing: h.keyRing,
      env: { ...RELAXED_LIMITS, PUBLIC_URL: 'https://auth.example.test/base/' } })
    const doc = (await p.request('GET', '/.well-known/oauth-authorization-server')).body
    t.equal(doc.token_endpoint, 'https://auth.example.test/base/oauth/token', 'PUBLIC_URL, trailing slash dropped')
    t.equal(doc.jwks_uri, 'https://auth.example.test/base/.well-known/jwks.json')
  })
})

t.test('introspection', async (t) => {
  const h: Harness = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000' } })
  const admin = await h.login('admin')
  const rs = await registerClient(h.url, admin.access, ['tokens:introspect'], 'resource server')
  const plain = await registerClient(h.url, admin.access, ['orders:read'], 'plain client')
  const exchanger = await registerClient(h.url, admin.access, ['token-exchange'], 'orders service')

  /** What the proxy answers to the token right now (GET /api/orders: users and orders:read clients). */
  const proxyStatus = async (token: string): Promise<number> => (await h.request('GET', '/api/orders', { token })).status
  /** Introspection and the proxy agree on the token; returns the introspection. */
  async function agree (t: Test, token: string, active: boolean, what: string): Promise<Record<string, any>> {
    const res = await introspect(h.url, rs, token)
    t.equal(res.status, 200, `${what}: 200`)
    t.equal(res.headers['cache-control'], 'no-store', `${what}: no-store`)
    t.equal(res.body.active, active, `${what}: active ${String(active)}`)
    t.equal((await proxyStatus(token)) === 200, active, `${what}: the proxy ${active ? 'accepts' : 'refuses'} it too`)
    if (!active) t.same(res.body, { active: false }, `${what}: nothing but active: false`)
    return res.body
  }

  t.test('errors', async (t) => {
    const alice = await h.login('alice')
    assertOAuthError(t, await formPost(h.url, '/oauth/introspect', { form: [['token', alice.access]] }), 401, 'invalid_client',
      'no client authentication')
    assertOAuthError(t, await formPost(h.url, '/oauth/introspect',
      { client: rs, secret: 'x'.repeat(43), form: [['token', alice.access]] }), 401, 'invalid_client', 'wrong secret')
    assertOAuthError(t, await introspect(h.url, plain, alice.access), 403, 'insufficient_scope', 'a client without tokens:introspect')
    assertOAuthError(t, await formPost(h.url, '/oauth/introspect', { client: rs }), 400, 'invalid_request', 'no token')
    assertOAuthError(t, await formPost(h.url, '/oauth/introspect', { client: rs, form: [['token', 'a'], ['token', 'b']] }), 400,
      'invalid_request', 'token twice')
    const json = await formPost(h.url, '/oauth/introspect', { client: rs, headers: { 'content-type': 'application/json' } })
    assertOAuthError(t, json, 400, 'invalid_request', 'a JSON body')
    const big = await formPost(h.url, '/oauth/introspect', { client: rs, form: [['token', 'x'.repeat(20_000)]] })
    t.equal(big.status, 413, 'a body too large: 413')
  })

  t.test('a user\'s access token: live, then revoked', async (t) => {
    const alice = await h.login('alice')
    const body = await agree(t, alice.access, true, 'live access token')
    t.match(body, { active: true, token_type: 'Bearer', sub: alice.user.id, iss: 'auth-gateway', aud: 'api', username: 'alice',
      roles: ['user'] })
    t.type(body.sid, 'string')
    t.ok(body.exp > body.iat, 'exp and iat')
    t.notOk('client_id' in body, 'no client_id')
    t.equal((await h.request('POST', '/auth/logout', { token: alice.access })).status, 204)
    await agree(t, alice.access, false, 'after logout')
  })

  t.test('a refresh token', async (t) => {
    const alice = await h.login('alice')
    const res = await introspect(h.url, rs, alice.refresh)
    t.match(res.body, { active: true, token_type: 'refresh_token', sub: alice.user.id, aud: 'auth-gateway' })
    t.type(res.body.sid, 'string')
    t.equal(await proxyStatus(alice.refresh), 401, 'the proxy refuses a refresh token as a Bearer token')
    await h.request('POST', '/auth/logout', { token: alice.access })
    t.same((await introspect(h.url, rs, alice.refresh)).body, { active: false }, 'its session revoked: inactive')
  })

  t.test('a machine client\'s token, then the client deleted', async (t) => {
    const job = await registerClient(h.url, admin.access, ['orders:read'], 'job')
    const token = await clientToken(h.url, job)
    const body = await agree(t, token, true, 'client token')
    t.match(body, { token_type: 'Bearer', sub: `client:${job.client_id}`, client_id: job.client_id, scope: 'orders:read' })
    t.notOk('sid' in body || 'username' in body, 'no session, no username')
    t.equal((await h.request('DELETE', `/admin/clients/${job.client_id}`, { token: admin.access })).status, 204)
    await agree(t, token, false, 'client deleted')
  })

  t.test('forged and expired tokens', async (t) => {
    const alice = await h.login('alice')
    const [head, payload] = alice.access.split('.')
    await agree(t, `${head}.${payload}.${'A'.repeat(86)}`, false, 'forged signature')
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString())
    const elevated = Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString('base64url')
    await agree(t, `${head}.${elevated}.${alice.access.split('.')[2]!}`, false, 'changed claims')
    await agree(t, 'not a token', false, 'garbage')
    const now = Math.floor(Date.now() / 1000)
    const expired = await new SignJWT({ ...claims, iat: now - 120, exp: now - 60 })
      .setProtectedHeader({ alg: 'ES256', kid: h.keyRing.signing.kid, typ: 'JWT' })
      .sign(h.keyRing.signing.privateKey)
    await agree(t, expired, false, 'expired (signed by the gateway\'s key, session alive)')
  })

  t.test('a deactivated user\'s token', async (t) => {
    const bob = await h.login('bob')
    await agree(t, bob.access, true, 'before')
    t.equal((await h.request('PATCH', `/api/users/${bob.user.id}`, { token: admin.access, body: { active: false } })).status, 200)
    await agree(t, bob.access, false, 'after deactivation')
    t.equal((await h.request('PATCH', `/api/users/${bob.user.id}`, { token: admin.access, body: { active: true } })).status, 200)
  })

  t.test('an exchanged (delegated) token', async (t) => {
    const bob = await h.login('bob')
    const delegated = await exchange(h.url, exchanger, bob.access, 'orders')
    const body = await agree(t, delegated, true, 'delegated token on its audience')
    t.match(body, { token_type: 'Bearer', sub: bob.user.id, username: 'bob', act: { sub: `client:${exchanger.client_id}` },
      client_id: exchanger.client_id, upstream: 'orders' })
    t.ok(body.exp - body.iat <= 300, 'short-lived')
    await h.request('POST', '/auth/logout', { token: bob.access })
    await agree(t, delegated, false, 'the user\'s session revoked')
  })

  t.test('the signed answer (RFC 9701)', async (t) => {
    const alice = await h.login('alice')
    const res = await introspect(h.url, rs, alice.access, { accept: 'application/token-introspection+jwt' })
    t.equal(res.status, 200)
    t.match(res.headers['content-type'], /^application\/token-introspection\+jwt/)
    t.equal(decodeProtectedHeader(res.text).typ, 'token-introspection+jwt')
    const { payload } = await jwtVerify(res.text, createLocalJWKSet(h.keyRing.publicJwks),
      { issuer: 'auth-gateway', audience: rs.client_id, typ: 'token-introspection+jwt' })
    t.match(payload.token_introspection, { active: true, sub: alice.user.id, username: 'alice' })
    const inactive = await introspect(h.url, rs, 'nope', { accept: 'application/token-introspection+jwt' })
    const { payload: p2 } = await jwtVerify(inactive.text, createLocalJWKSet(h.keyRing.publicJwks), { audience: rs.client_id })
    t.same(p2.token_introspection, { active: false })
    const plainJson = await introspect(h.url, rs, alice.access, { accept: 'application/json' })
    t.match(plainJson.headers['content-type'], /^application\/json/, 'JSON unless asked')
  })

  t.test('audited without the token', async (t) => {
    const alice = await h.login('alice')
    await introspect(h.url, rs, alice.access)
    let events: Array<Record<string, unknown>> = []
    await waitFor(async () => {
      events = (await h.request('GET', '/admin/events?event=token_introspected&limit=1000', { token: admin.access })).body.events
      return events.some((e) => e.subject === alice.user.id)
    }, 'token_introspected event')
    const event = events.find((e) => e.subject === alice.user.id)!
    t.match(event, { client_id: rs.client_id, active: true, kind: 'Bearer' })
    t.notOk(JSON.stringify(events).includes(alice.access.split('.')[2]!), 'no token in the trail')
  })
})

t.test('introspection is limited per client and wrong secrets count', async (t) => {
  const h: Harness = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '3', LOGIN_IP_LIMIT: '2' } })
  const admin = await h.login('admin')
  const rs = await registerClient(h.url, admin.access, ['tokens:introspect'], 'resource server')
  const alice = await h.login('alice')
  for (let i = 0; i < 3; i++) t.equal((await introspect(h.url, rs, alice.access)).status, 200, `request ${i + 1} within the limit`)
  const limited = await introspect(h.url, rs, alice.access)
  assertOAuthError(t, limited, 429, 'rate_limited', 'past API_CLIENT_LIMIT')
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After')

  const wrong = { client: rs, secret: 'y'.repeat(43), form: [['token', alice.access]] as Array<[string, string]>, from: '127.0.0.9' }
  assertOAuthError(t, await formPost(h.url, '/oauth/introspect', wrong), 401, 'invalid_client', 'first wrong secret')
  assertOAuthError(t, await formPost(h.url, '/oauth/introspect', wrong), 401, 'invalid_client', 'second wrong secret')
  const blocked = await formPost(h.url, '/oauth/introspect', { ...wrong, secret: rs.client_secret })
  assertOAuthError(t, blocked, 429, 'rate_limited', 'past the limit even the right secret is refused')
  t.ok(Number(blocked.headers['retry-after']) >= 1, 'Retry-After')
})

t.test('the OpenAPI document describes the OAuth endpoints and scopes', async (t) => {
  const h: Harness = await build(t, { env: RELAXED_LIMITS })
  const doc = (await h.request('GET', '/docs/json')).body
  for (const path of ['/.well-known/oauth-authorization-server', '/oauth/introspect', '/oauth/revoke', '/oauth/token']) t.ok(
    doc.paths[path] !== undefined, `${path} documented`)
  t.same(Object.keys(doc.components.securitySchemes.oauthClient.flows.clientCredentials.scopes), ['tokens:introspect', 'token-exchange'],
    'the OAuth scopes')
  t.ok(doc.paths['/oauth/introspect'].post.responses['200'].content['application/token-introspection+jwt'] !== undefined, 'the JWT answer')
  t.match(JSON.stringify(doc.paths['/oauth/token'].post), /token-exchange/, 'token exchange at the token endpoint')
  const tokenForm = doc.paths['/oauth/token'].post.requestBody.content['application/x-www-form-urlencoded']
  t.ok(tokenForm.schema.properties.subject_token !== undefined, 'subject_token documented')
})
