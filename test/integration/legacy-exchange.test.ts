/**
 * Cut-over from a running Django service (docs/simplejwt-api.md): a refresh token of the old service
 * (HS256, LEGACY_SIMPLEJWT_KEY) is exchanged once for a gateway session until
 * LEGACY_SIMPLEJWT_UNTIL, at /api/token/refresh/ and /auth/refresh; every other use is refused.
 */
import t from 'tap'
import { build } from '../helper.js'
import { claimsOf, RELAXED_LIMITS, assertTokenRefused } from '../helpers/auth.js'
import { LEGACY_KEY, legacyToken, metricValue } from '../helpers/simplejwt.js'
import { signEs256 } from '../helpers/jwt-craft.js'
import { dpopKey } from '../helpers/dpop.js'
import { legacyJtiKey } from '../../src/auth/legacy-exchange.js'

const TOKEN_NOT_VALID = { detail: 'Token is invalid or expired', code: 'token_not_valid' }
const FUTURE = new Date(Date.now() + 7 * 86400_000).toISOString()

t.test('legacy refresh tokens during the window', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, LEGACY_SIMPLEJWT_KEY: LEGACY_KEY, LEGACY_SIMPLEJWT_UNTIL: FUTURE } })
  const refused = async (): Promise<number> => metricValue(h, 'gateway_security_events_total', { event: 'legacy_token_refused' })

  t.test('exchanged once at /api/token/refresh/ for a session of the same user', async (t) => {
    const exp = Math.floor(Date.now() / 1000) + 3600
    const old = legacyToken({ exp, jti: 'a1b2c3d4e5f6' })
    const res = await h.request('POST', '/api/token/refresh/', { body: { refresh: old } })
    t.equal(res.status, 200)
    t.same(Object.keys(res.body).sort(), ['access', 'refresh'])
    const access = claimsOf(res.body.access)
    t.equal(access.sub, '1001')
    t.equal(access.user_id, '1001')
    t.equal(access.username, 'alice')
    t.equal((await h.request('GET', '/api/users/me', { token: res.body.access })).body.username, 'alice', 'a working gateway session')
    // The new refresh token is a gateway token that rotates as usual.
    t.equal((await h.request('POST', '/api/token/refresh/', { body: { refresh: res.body.refresh } })).status, 200)

    const ttl = await h.gateway.redis.ttl(legacyJtiKey('a1b2c3d4e5f6'))
    t.ok(ttl > 3500 && ttl <= 3600, `the jti is remembered until the token's exp (ttl ${ttl})`)
    t.equal(await metricValue(h, 'gateway_security_events_total', { event: 'legacy_token_exchanged' }), 1)

    const before = await refused()
    const again = await h.request('POST', '/api/token/refresh/', { body: { refresh: old } })
    t.equal(again.status, 401, 'a second exchange is refused')
    t.same(again.body, TOKEN_NOT_VALID)
    t.equal(again.headers.get('www-authenticate'), 'Bearer realm="api"')
    t.equal(await refused() - before, 1, 'legacy_token_refused event')
    assertTokenRefused(t, await h.request('POST', '/auth/refresh', { body: { refresh: old } }), 'token_invalid', 'and at /auth/refresh')
  })

  t.test('also at /auth/refresh, with the gateway\'s answer shape', async (t) => {
    const res = await h.request('POST', '/auth/refresh', { body: { refresh: legacyToken({ user_id: 1002 }) } })
    t.equal(res.status, 200)
    t.equal(res.body.token_type, 'Bearer')
    t.equal(claimsOf(res.body.access).username, 'bob')
  })

  t.test('with a DPoP proof, the new session is bound to its key (docs/dpop.md)', async (t) => {
    const key = await dpopKey()
    const proof = await key.proof({ method: 'POST', url: `${h.url}/auth/refresh` })
    const res = await h.request('POST', '/auth/refresh', { body: { refresh: legacyToken({ user_id: 1002 }) }, headers: { dpop: proof } })
    t.equal(res.status, 200)
    t.equal(res.body.token_type, 'DPoP')
    t.same(claimsOf(res.body.access).cnf, { jkt: key.jkt }, 'the access token is bound')
    t.same(claimsOf(res.body.refresh).cnf, { jkt: key.jkt }, 'and the refresh token')
    const bearer = await h.request('GET', '/api/users/me', { token: res.body.access })
    t.equal(bearer.status, 401, 'the bound token is refused as Bearer')
  })

  t.test('refused: wrong key, other algorithms, wrong type, expired, unknown or inactive users', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    const cases: Record<string, string> = {
      'wrong signing key': legacyToken({}, { key: 'another-key' }),
      HS512: legacyToken({}, { alg: 'HS512' }),
      'alg none': legacyToken({}, { alg: 'none' }),
      'ES256 with the gateway\'s own key': signEs256(h.keyRing.signing.privateKey, { alg: 'ES256', kid: h.keyRing.signing.kid, typ: 'JWT' },
        { token_type: 'refresh', exp: now + 600, iat: now, jti: 'es256legacy', user_id: 1001 }),
      'an access token': legacyToken({ token_type: 'access' }),
      expired: legacyToken({ exp: now - 10, iat: now - 100 }),
      'no exp': legacyToken({ exp: undefined }),
      'no jti': legacyToken({ jti: undefined }),
      'unknown user': legacyToken({ user_id: 999999 }),
      'inactive user': legacyToken({ user_id: 1004 }),
      'odd user id': legacyToken({ user_id: '../1001' })
    }
    const before = await refused()
    for (const [what, token] of Object.entries(cases)) {
      const res = await h.request('POST', '/api/token/refresh/', { body: { refresh: token } })
      t.equal(res.status, 401, `${what}: 401`)
      t.same(res.body, TOKEN_NOT_VALID, `${what}: token_not_valid`)
    }
    t.equal(await refused() - before, Object.keys(cases).length, 'one legacy_token_refused event each')
  })

  t.test('never accepted as an access token, nor by verify', async (t) => {
    const legacyAccess = legacyToken({ token_type: 'access' })
    const legacyRefresh = legacyToken()
    for (const token of [legacyAccess, legacyRefresh]) {
      assertTokenRefused(t, await h.request('GET', '/api/orders', { token }), 'token_invalid', 'proxied route')
      assertTokenRefused(t, await h.request('GET', '/auth/sessions', { token }), 'token_invalid', 'sessions')
      assertTokenRefused(t, await h.request('POST', '/auth/verify', { body: { token } }), 'token_invalid', '/auth/verify')
      t.same((await h.request('POST', '/api/token/verify/', { body: { token } })).body, TOKEN_NOT_VALID, '/api/token/verify/')
      t.equal((await h.request('POST', '/api/logout/', { token })).status, 401, '/api/logout/')
    }
    // Refused there, so still exchangeable once: verify did not spend it.
    t.equal((await h.request('POST', '/api/token/refresh/', { body: { refresh: legacyRefresh } })).status, 200)
  })

  t.test('concurrent exchanges of one token: exactly one wins', async (t) => {
    const old = legacyToken({ user_id: 1003 })
    const results = await Promise.all(Array.from({ length: 5 }, async () =>
      h.request('POST', '/api/token/refresh/', { body: { refresh: old } })))
    t.equal(results.filter((r) => r.status === 200).length, 1)
    t.equal(results.filter((r) => r.status === 401).length, 4)
  })
})

t.test('a legacy token issued before a password change, logout-all or admin revoke-all is refused', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, LEGACY_SIMPLEJWT_KEY: LEGACY_KEY, LEGACY_SIMPLEJWT_UNTIL: FUTURE } })
  const admin = await h.login('admin')
  const issuedBefore = (userId: number): string => legacyToken({ user_id: userId, iat: Math.floor(Date.now() / 1000) - 30 })
  const issuedAfter = (userId: number): string => legacyToken({ user_id: userId, iat: Math.floor(Date.now() / 1000) + 2 })
  const revocations: Array<[string, number, () => Promise<number>]> = [
    ['a password change', 1001, async () => {
      const alice = await h.login('alice')
      return (await h.request('POST', '/api/users/me/password',
        { token: alice.access, body: { current_password: 'alice-password', new_password: 'alice-new-password-1' } })).status
    }],
    ['logout-all', 1002, async () => (await h.request('POST', '/auth/logout-all', { token: (await h.login('bob')).access })).status],
    ['an admin revoke-all', 1003, async () => (await h.request('DELETE', '/admin/users/1003/sessions', { token: admin.access })).status]
  ]
  for (const [what, userId, revoke] of revocations) {
    const before = issuedBefore(userId)
    t.equal(await revoke(), 204, `${what} done`)
    const refused = await h.request('POST', '/api/token/refresh/', { body: { refresh: before } })
    t.equal(refused.status, 401, `${what}: a legacy token issued before it is refused`)
    t.same(refused.body, TOKEN_NOT_VALID)
    assertTokenRefused(t, await h.request('POST', '/auth/refresh', { body: { refresh: issuedBefore(userId) } }), 'token_invalid',
      `${what}: refused at /auth/refresh too`)
    t.equal((await h.request('POST', '/api/token/refresh/', { body: { refresh: issuedAfter(userId) } })).status, 200,
      `${what}: a legacy token issued after it is still exchanged`)
  }
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  const ttl = await redis.pttl('gw:{u:1002}:legacy-cutoff')
  t.ok(ttl > 0 && ttl <= Date.parse(FUTURE) - Date.now() + 1000, 'the cut-off expires when the exchange window closes')
})

t.test('after LEGACY_SIMPLEJWT_UNTIL no legacy token is accepted', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, LEGACY_SIMPLEJWT_KEY: LEGACY_KEY, LEGACY_SIMPLEJWT_UNTIL: '2020-01-01' } })
  const res = await h.request('POST', '/api/token/refresh/', { body: { refresh: legacyToken() } })
  t.equal(res.status, 401)
  t.same(res.body, TOKEN_NOT_VALID)
  t.equal(await metricValue(h, 'gateway_security_events_total', { event: 'legacy_token_refused' }), 1)
})

t.test('without LEGACY_SIMPLEJWT_KEY no legacy token is accepted', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS } })
  assertTokenRefused(t, await h.request('POST', '/auth/refresh', { body: { refresh: legacyToken() } }), 'token_invalid', 'not enabled')
})
