/**
 * Token exchange (RFC 8693) over real HTTP: every error of the grant; the delegated token's shape;
 * that it reaches only its audience's routes (on the own proxy and at forward authentication),
 * never the gateway's own endpoints, is never refreshable, dies with the user's session and can
 * never do more than the user (route by route).
 */
import t, { type Test } from 'tap'
import { build, type Harness } from '../helper.js'
import { claimsOf, RELAXED_LIMITS } from '../helpers/auth.js'
import { waitFor } from '../helpers/redis-server.js'
import { clientToken, registerClient, type RawResult, type RegisteredClient } from '../helpers/machine-clients.js'
import { ACCESS_TOKEN_TYPE, exchange, formPost, JWT_TOKEN_TYPE, TOKEN_EXCHANGE } from '../helpers/oauth-standard.js'
import { dpopHeaders, dpopKey } from '../helpers/dpop.js'
import { askFrom } from '../helpers/forward-auth.js'

function assertOAuthError (t: Test, res: RawResult, status: number, error: string, what: string): void {
  t.equal(res.status, status, `${what}: status ${status}`)
  t.equal(res.body?.error, error, `${what}: error ${error}`)
  t.match(res.headers['content-type'], /^application\/json/, `${what}: application/json`)
  t.equal(res.headers['cache-control'], 'no-store', `${what}: no-store`)
}

t.test('token exchange', async (t) => {
  const h: Harness = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000' } })
  const admin = await h.login('admin')
  const service = await registerClient(h.url, admin.access, ['token-exchange'], 'orders service')
  const plain = await registerClient(h.url, admin.access, ['orders:read'], 'plain client')
  const grant = (client: RegisteredClient, form: Array<[string, string]>, secret?: string): Promise<RawResult> =>
    formPost(h.url, '/oauth/token', { client, form: [['grant_type', TOKEN_EXCHANGE], ...form],
      ...(secret !== undefined ? { secret } : {}) })

  t.test('errors', async (t) => {
    const alice = await h.login('alice')
    const good: Array<[string, string]> = [['subject_token', alice.access], ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['audience', 'users']]
    assertOAuthError(t, await formPost(h.url, '/oauth/token', { form: [['grant_type', TOKEN_EXCHANGE], ...good] }), 401, 'invalid_client',
      'no client authentication')
    assertOAuthError(t, await grant(service, good, 'w'.repeat(43)), 401, 'invalid_client', 'wrong secret')
    assertOAuthError(t, await grant(plain, good), 400, 'unauthorized_client', 'a client without token-exchange')
    assertOAuthError(t, await grant(service, good.filter(([k]) => k !== 'subject_token')), 400, 'invalid_request', 'no subject_token')
    assertOAuthError(t, await grant(service, [['subject_token', alice.access],
      ['subject_token_type', 'urn:ietf:params:oauth:token-type:refresh_token'], ['audience', 'users']]), 400, 'invalid_request',
        'another subject_token_type')
    assertOAuthError(t, await grant(service, good.filter(([k]) => k !== 'audience')), 400, 'invalid_request', 'no audience')
    assertOAuthError(t, await grant(service, [...good.filter(([k]) => k !== 'audience'), ['audience', 'billing']]), 400, 'invalid_target',
      'an audience that is no upstream')
    assertOAuthError(t, await grant(service, [...good, ['audience', 'orders']]), 400, 'invalid_request', 'two audiences')
    assertOAuthError(t, await grant(service, [...good, ['scope', 'orders:read']]), 400, 'invalid_scope',
      'a scope the audience\'s routes do not grant')
    assertOAuthError(t, await grant(service, [...good, ['requested_token_type', 'urn:ietf:params:oauth:token-type:refresh_token']]), 400,
      'invalid_request', 'a refresh token requested')
    assertOAuthError(t, await grant(service, [...good, ['actor_token', alice.access], ['actor_token_type', ACCESS_TOKEN_TYPE]]), 400,
      'invalid_request', 'an actor token')
    assertOAuthError(t, await grant(service, [['subject_token', 'garbage'], ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['audience', 'users']]), 400, 'invalid_request', 'a garbage subject token')
    assertOAuthError(t, await grant(service, [['subject_token', alice.refresh], ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['audience', 'users']]), 400, 'invalid_request', 'a refresh token as subject')
    const clientAccess = await clientToken(h.url, plain)
    assertOAuthError(t, await grant(service, [['subject_token', clientAccess], ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['audience', 'orders']]), 400, 'invalid_request', 'a machine client\'s token as subject')
    const delegated = await exchange(h.url, service, alice.access, 'users')
    assertOAuthError(t, await grant(service, [['subject_token', delegated], ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['audience', 'users']]), 400, 'invalid_request', 'a delegated token as subject (no chains)')
    assertOAuthError(t, await grant(service, [['subject_token', alice.access], ['subject_token_type', JWT_TOKEN_TYPE],
      ['audience', 'users']]), 400, 'invalid_request', 'an access token presented as an assertion')
    // A sender-constrained token: its key or cookie is not the exchanging client's (docs/dpop.md).
    const key = await dpopKey()
    const bound = await h.request('POST', '/auth/login', {
      body: { username: 'alice', password: 'alice-password' },
      headers: { dpop: await key.proof({ method: 'POST', url: `${h.url}/auth/login` }) }
    })
    t.equal(bound.body.token_type, 'DPoP', 'a DPoP-bound login')
    assertOAuthError(t, await grant(service, [['subject_token', bound.body.access], ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['audience', 'users']]), 400, 'invalid_request', 'a DPoP-bound subject token')
    const cookieLogin = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password', cookie: true } })
    t.ok(claimsOf(cookieLogin.body.access).fgp, 'a cookie-mode token carries its fingerprint')
    assertOAuthError(t, await grant(service, [['subject_token', cookieLogin.body.access], ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['audience', 'users']]), 400, 'invalid_request', 'a fingerprinted subject token')
    await h.request('POST', '/auth/logout', { token: alice.access })
    assertOAuthError(t, await grant(service, good), 400, 'invalid_request', 'a revoked subject token')
  })

  t.test('the delegated token', async (t) => {
    const alice = await h.login('alice')
    const res = await grant(service, [['subject_token', alice.access], ['subject_token_type', ACCESS_TOKEN_TYPE], ['audience', 'users']])
    t.equal(res.status, 200)
    t.equal(res.headers['cache-control'], 'no-store')
    t.same(Object.keys(res.body).sort(), ['access_token', 'expires_in', 'issued_token_type', 'token_type'],
      'the answer\'s members, no refresh token')
    t.match(res.body, { issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer' })
    t.ok(res.body.expires_in > 0 && res.body.expires_in <= 300, 'short-lived')
    const claims = claimsOf(res.body.access_token)
    const subject = claimsOf(alice.access)
    t.match(claims, { sub: alice.user.id, sid: subject.sid, username: 'alice', roles: ['user'],
      act: { sub: `client:${service.client_id}` }, upstream: 'users', token_type: 'access', aud: 'api' })
    t.notOk('client_id' in claims, 'no client_id: it is the user\'s token, the client is the actor')
    t.ok((claims.exp as number) <= (subject.exp as number), 'never outlives the subject token')
    let events: Array<Record<string, unknown>> = []
    await waitFor(async () => {
      events = (await h.request('GET', '/admin/events?event=token_exchanged', { token: admin.access })).body.events
      return events.some((e) => e.jti === claims.jti)
    }, 'token_exchanged event')
    t.match(events.find((e) => e.jti === claims.jti), { user_id: alice.user.id, client_id: service.client_id, audience: 'users' },
      'token_exchanged in the audit trail')
  })

  t.test('reaches its audience only, never the gateway\'s endpoints, never refreshable', async (t) => {
    const alice = await h.login('alice')
    const forUsers = await exchange(h.url, service, alice.access, 'users')
    const me = await h.request('GET', '/api/users/me', { token: forUsers })
    t.equal(me.status, 200, 'its audience\'s route')
    t.equal(me.body.username, 'alice', 'as the user')
    const elsewhere = await h.request('GET', '/api/orders', { token: forUsers })
    t.equal(elsewhere.status, 403, 'another audience: 403')
    t.equal(elsewhere.body.code, 'forbidden')
    t.equal((await h.request('GET', '/auth/sessions', { token: forUsers })).status, 403, 'the gateway\'s own endpoints: 403')
    t.equal((await h.request('POST', '/auth/logout', { token: forUsers })).status, 403, 'no logout with it')
    t.equal((await h.request('GET', '/admin/events', { token: forUsers })).status, 403, 'no admin API')
    const refresh = await h.request('POST', '/auth/refresh', { body: { refresh: forUsers } })
    t.equal(refresh.status, 401, 'not a refresh token')
    t.equal(refresh.body.code, 'token_invalid')
    const viaGrant = await formPost(h.url, '/oauth/token',
      { client: service, form: [['grant_type', 'refresh_token'], ['refresh_token', forUsers]] })
    assertOAuthError(t, viaGrant, 400, 'unsupported_grant_type', 'no refresh grant')
    t.equal((await h.request('GET', '/api/users/me', { token: alice.access })).status, 200, 'the user\'s session is untouched')
  })

  t.test('dies with the user\'s session', async (t) => {
    const alice = await h.login('alice')
    const forOrders = await exchange(h.url, service, alice.access, 'orders')
    t.equal((await h.request('GET', '/api/orders', { token: forOrders })).status, 200)
    t.equal((await h.request('POST', '/auth/logout', { token: alice.access })).status, 204)
    const after = await h.request('GET', '/api/orders', { token: forOrders })
    t.equal(after.status, 401, 'refused from the next request on')
    t.equal(after.body.code, 'token_revoked')
  })

  t.test('a DPoP proof binds the delegated token; a dpop_bound client must send one', async (t) => {
    const created = await h.request('POST', '/admin/clients',
      { token: admin.access, body: { name: 'bound exchanger', scopes: ['token-exchange'], dpop_bound: true } })
    t.equal(created.status, 201)
    const bound = created.body as RegisteredClient
    const alice = await h.login('alice')
    const form: Array<[string, string]> = [['subject_token', alice.access], ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['audience', 'orders']]
    const without = await grant(bound, form)
    t.equal(without.status, 400, 'a dpop_bound client without a proof: 400')
    t.equal(without.body?.error, 'invalid_dpop_proof')

    const key = await dpopKey()
    const withProof = await formPost(h.url, '/oauth/token', { client: bound, form: [['grant_type', TOKEN_EXCHANGE], ...form],
      headers: { dpop: await key.proof({ method: 'POST', url: `${h.url}/oauth/token` }) } })
    t.equal(withProof.status, 200, 'with a proof: 200')
    t.equal(withProof.body.token_type, 'DPoP', 'answered as DPoP')
    const token = withProof.body.access_token as string
    t.match(claimsOf(token), { cnf: { jkt: key.jkt }, act: { sub: `client:${bound.client_id}` }, upstream: 'orders' },
      'bound to the proof\'s key')
    t.equal((await h.request('GET', '/api/orders', { token })).status, 401, 'as Bearer it is refused')
    const url = `${h.url}/api/orders`
    const used = await h.request('GET', '/api/orders',
      { headers: dpopHeaders(token, await key.proof({ method: 'GET', url, token })) })
    t.equal(used.status, 200, 'with a proof of its key it reaches its audience')

    const plainWithProof = await formPost(h.url, '/oauth/token', { client: service, form: [['grant_type', TOKEN_EXCHANGE], ...form],
      headers: { dpop: await key.proof({ method: 'POST', url: `${h.url}/oauth/token` }) } })
    t.equal(plainWithProof.body.token_type, 'DPoP', 'any client that sends a proof gets a bound token')
    t.equal((await h.request('GET', '/api/orders', { token: plainWithProof.body.access_token as string })).status, 401,
      'refused as Bearer too')
  })

  t.test('a narrowed scope', async (t) => {
    const alice = await h.login('alice')
    const res = await grant(service, [['subject_token', alice.access], ['subject_token_type', ACCESS_TOKEN_TYPE], ['audience', 'orders'],
      ['scope', 'orders:read']])
    t.equal(res.body.scope, 'orders:read', 'the narrowed scope is in the answer')
    const token = res.body.access_token as string
    t.equal((await h.request('GET', '/api/orders', { token })).status, 200, 'orders:read lists')
    t.equal((await h.request('POST', '/api/orders', { token, body: { item: 'x' } })).status, 403, 'but does not create')
    t.equal((await h.request('POST', '/api/orders', { token: alice.access, body: { item: 'x' } })).status, 201, 'which the user can')
  })

  t.test('never more than the user, route by route', async (t) => {
    const probes: Array<[string, string, unknown?]> = [
      ['GET', '/api/users/me'], ['HEAD', '/api/users/me'], ['GET', '/api/users'], ['GET', '/api/users/1001'],
      ['PATCH', '/api/users/1002', { roles: ['user', 'admin'] }], ['GET', '/api/orders'], ['POST', '/api/orders', { item: 'y' }],
        ['GET', '/api/orders/none']
    ]
    const allowed = (status: number): boolean => status !== 401 && status !== 403 && status !== 404
    let delegateAllowed = 0
    for (const user of ['alice', 'admin']) {
      for (const audience of ['users', 'orders']) {
        for (const scope of [undefined, 'orders:read']) {
          if (scope !== undefined && audience !== 'orders') continue
          const session = await h.login(user)
          const delegated = await exchange(h.url, service, session.access, audience, scope !== undefined ? [['scope', scope]] : [])
          for (const [method, path, body] of probes) {
            // PATCH would change bob: only ever tried with alice (who may not), never by an admin.
            if (method === 'PATCH' && user === 'admin') continue
            const asDelegate = await h.request(method, path, { token: delegated, ...(body !== undefined ? { body } : {}) })
            const asUser = await h.request(method, path, { token: session.access, ...(body !== undefined ? { body } : {}) })
            if (allowed(asDelegate.status)) delegateAllowed++
            t.ok(!allowed(asDelegate.status) || allowed(asUser.status),
              `${user} via ${audience}${scope !== undefined ? ` (${scope})` : ''}: ${method} ${path} allowed to the delegate ` +
                `(${asDelegate.status}) only when allowed to the user (${asUser.status})`)
            const upstreamOfPath = path.startsWith('/api/users') ? 'users' : 'orders'
            if (upstreamOfPath !== audience) t.equal(asDelegate.status, 403, `${method} ${path} is outside the audience ${audience}`)
          }
        }
      }
    }
    t.ok(delegateAllowed > 0, `the delegate was allowed ${delegateAllowed} probes: the implication above was not vacuous`)
  })

  t.test('follows the user\'s live roles', async (t) => {
    const bob = await h.login('bob')
    t.equal((await h.request('PATCH', '/api/users/1002', { token: admin.access, body: { roles: ['user', 'admin'] } })).status, 200)
    const delegated = await exchange(h.url, service, (await h.login('bob')).access, 'users')
    t.equal((await h.request('GET', '/api/users', { token: delegated })).status, 200, 'an admin user\'s delegate lists users')
    t.equal((await h.request('PATCH', '/api/users/1002', { token: admin.access, body: { roles: ['user'] } })).status, 200)
    t.equal((await h.request('GET', '/api/users', { token: delegated })).status, 403,
      'the role taken from the user: taken from the delegate at once')
    t.equal((await h.request('GET', '/api/users/me', { token: bob.access })).status, 200)
  })
})

t.test('forward authentication applies the same audience restriction', async (t) => {
  const proxy = '127.0.0.2'
  const h: Harness = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000', FORWARD_AUTH_PROXIES: `${proxy}=traefik` } })
  const admin = await h.login('admin')
  const service = await registerClient(h.url, admin.access, ['token-exchange'], 'orders service')
  const alice = await h.login('alice')
  const forOrders = await exchange(h.url, service, alice.access, 'orders')
  const check = (method: string, uri: string): ReturnType<typeof askFrom> => askFrom(h.url, proxy, 'GET', '/auth/check',
    { authorization: `Bearer ${forOrders}`, 'x-forwarded-method': method, 'x-forwarded-uri': uri })
  const allowed = await check('GET', '/api/orders')
  t.equal(allowed.status, 200, 'its audience\'s route: allowed')
  t.equal(allowed.headers['x-user-id'], alice.user.id, 'as the user')
  t.equal((await check('GET', '/api/users/me')).status, 403, 'another audience\'s route: 403')
  t.equal((await h.request('POST', '/auth/logout', { token: alice.access })).status, 204)
  t.equal((await check('GET', '/api/orders')).status, 401, 'dead with the user\'s session')
})

t.test('exchanges count against the client\'s limit', async (t) => {
  const h: Harness = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '2' } })
  const admin = await h.login('admin')
  const service = await registerClient(h.url, admin.access, ['token-exchange'], 'orders service')
  const alice = await h.login('alice')
  await exchange(h.url, service, alice.access, 'users')
  await exchange(h.url, service, alice.access, 'users')
  const limited = await formPost(h.url, '/oauth/token',
    { client: service, form: [['grant_type', TOKEN_EXCHANGE], ['subject_token', alice.access], ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['audience', 'users']] })
  assertOAuthError(t, limited, 429, 'rate_limited', 'past API_CLIENT_LIMIT')
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After')
})
