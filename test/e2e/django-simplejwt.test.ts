/**
 * The simplejwt-compatible API (docs/simplejwt-api.md) against a real Django REST framework + simplejwt 5.2.2 service (Debian's packages,
 * run by gunicorn): (1) as an upstream of the gateway, it accepts the gateway's access tokens
 * through JWK_URL and refuses forged ones; (2) as "the old system", it issues a refresh token
 * that the gateway exchanges once during the cut-over window, and not after the date.
 */
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { build, httpRequest, type HttpResult } from '../helper.js'
import { claimsOf, RELAXED_LIMITS, assertTokenRefused } from '../helpers/auth.js'
import { assemble, decodePart, signEs256, signHs256 } from '../helpers/jwt-craft.js'
import { seedDatabase, startDjango } from '../helpers/django-simplejwt.js'
import { freePort } from '../helpers/redis-server.js'

const TOKEN_NOT_VALID = { detail: 'Token is invalid or expired', code: 'token_not_valid' }

t.test('a stock simplejwt service behind the gateway, with JWK_URL', async (t) => {
  // The gateway must know the upstream's address and the upstream the gateway's JWKS: port first.
  const djangoPort = await freePort()
  const h = await build(t, {
    env: { ...RELAXED_LIMITS, ORDERS_URL: `http://127.0.0.1:${djangoPort}` },
    routes: [{ path: '/api/django', upstream: 'orders', limit: 'api' }]
  })
  const django = await startDjango(t, { SIMPLEJWT_MODE: 'gateway', GATEWAY_JWKS_URL: `${h.url}/.well-known/jwks.json` }, djangoPort)
  const direct = (token?: string): Promise<HttpResult> =>
    httpRequest(django.url, 'GET', '/api/django/whoami', token !== undefined ? { token } : {})

  const pair = (await h.request('POST', '/api/token/', { body: { username: 'alice', password: 'alice-password' } })).body

  t.test('simplejwt accepts the gateway\'s access token (user_id claim, ES256 from the JWKS)', async (t) => {
    const res = await direct(pair.access)
    t.equal(res.status, 200, res.text)
    t.same(res.body, { user_id: '1001', username: 'alice', via: 'JWTStatelessUserAuthentication' })
  })

  t.test('through the gateway, the service sees the caller from the gateway assertion', async (t) => {
    const res = await h.request('GET', '/api/django/whoami', { token: pair.access })
    t.equal(res.status, 200, res.text)
    t.match(res.body, { user_id: '1001', via: 'GatewayAssertionAuthentication' })
  })

  t.test('forged tokens are refused, directly and at the gateway', async (t) => {
    const real = pair.access.split('.')
    const header = decodePart(real[0]!)
    const claims = decodePart(real[1]!)
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    const publicJwk = h.keyRing.publicJwks.keys[0]
    const forged: Record<string, string> = {
      'signed by another key with the gateway\'s kid': signEs256(attacker, header, { ...claims, user_id: '1003', sub: '1003' }),
      'claims changed, signature kept':
        `${real[0]}.${Buffer.from(JSON.stringify({ ...claims, user_id: '1003' })).toString('base64url')}.${real[2]}`,
      'alg none': assemble({ alg: 'none', typ: 'JWT' }, claims),
      'HS256 keyed with the public JWK': signHs256(JSON.stringify(publicJwk), { ...header, alg: 'HS256' }, claims),
      'a refresh token': pair.refresh
    }
    for (const [what, token] of Object.entries(forged)) {
      const res = await direct(token)
      t.equal(res.status, 401, `${what}: simplejwt refuses`)
      t.equal(res.body?.code, 'token_not_valid', `${what}: token_not_valid`)
      assertTokenRefused(t, await h.request('GET', '/api/django/whoami', { token }), 'token_invalid', `${what}: the gateway refuses`)
    }
    const noToken = await direct()
    t.equal(noToken.status, 401, 'no token: 401')
    const fakeAssertion = await httpRequest(django.url, 'GET', '/api/django/whoami',
      { headers: { 'x-gateway-assertion': forged['signed by another key with the gateway\'s kid']! } })
    t.equal(fakeAssertion.status, 401, 'a forged assertion sent around the gateway is refused')
  })
})

t.test('cut-over from the old Django service', async (t) => {
  const signingKey = 'old-service-signing-key-0123456789abcdef'
  const oldEnv = { SIMPLEJWT_MODE: 'legacy', LEGACY_SIGNING_KEY: signingKey }
  const db = seedDatabase(t, oldEnv, ['1001:alice:old-alice-password', '1004:carol:old-carol-password'])
  const old = await startDjango(t, { ...oldEnv, DJANGO_DB: db })
  const issue = async (username: string, password: string): Promise<{ access: string, refresh: string }> => {
    const res = await httpRequest(old.url, 'POST', '/api/token/', { body: { username, password } })
    if (res.status !== 200) throw new Error(`the old service refused ${username}: ${res.status} ${res.text}`)
    return res.body
  }
  const until = new Date(Date.now() + 86400_000).toISOString()
  const h = await build(t, { env: { ...RELAXED_LIMITS, LEGACY_SIMPLEJWT_KEY: signingKey, LEGACY_SIMPLEJWT_UNTIL: until } })

  t.test('a refresh token of the old service is exchanged once for a gateway session', async (t) => {
    const oldPair = await issue('alice', 'old-alice-password')
    t.equal(decodePart(oldPair.refresh.split('.')[0]!).alg, 'HS256', 'the old service signs HS256')
    // The old service's access token is never a gateway access token.
    assertTokenRefused(t, await h.request('GET', '/api/orders', { token: oldPair.access }), 'token_invalid', 'old access token')

    const res = await h.request('POST', '/api/token/refresh/', { body: { refresh: oldPair.refresh } })
    t.equal(res.status, 200, res.text)
    t.equal(claimsOf(res.body.access).sub, '1001', 'matched by user_id')
    t.equal((await h.request('GET', '/api/orders', { token: res.body.access })).status, 200, 'a working gateway session')

    const again = await h.request('POST', '/api/token/refresh/', { body: { refresh: oldPair.refresh } })
    t.equal(again.status, 401, 'second exchange refused')
    t.same(again.body, TOKEN_NOT_VALID)
    assertTokenRefused(t, await h.request('POST', '/auth/refresh', { body: { refresh: oldPair.refresh } }), 'token_invalid',
      'second exchange at /auth/refresh')
  })

  t.test('a user inactive at the gateway is refused', async (t) => {
    const carol = await issue('carol', 'old-carol-password')
    const res = await h.request('POST', '/api/token/refresh/', { body: { refresh: carol.refresh } })
    t.equal(res.status, 401)
    t.same(res.body, TOKEN_NOT_VALID)
  })

  t.test('after LEGACY_SIMPLEJWT_UNTIL the exchange is closed', async (t) => {
    const closed = await build(t, { redis: h.redis,
      env: { ...RELAXED_LIMITS, LEGACY_SIMPLEJWT_KEY: signingKey, LEGACY_SIMPLEJWT_UNTIL: '2020-01-01T00:00:00Z' } })
    const fresh = await issue('alice', 'old-alice-password')
    const res = await closed.request('POST', '/api/token/refresh/', { body: { refresh: fresh.refresh } })
    t.equal(res.status, 401)
    t.same(res.body, TOKEN_NOT_VALID)
    // The same token is still good during the window (on the other gateway): the refusal was the date's.
    t.equal((await h.request('POST', '/api/token/refresh/', { body: { refresh: fresh.refresh } })).status, 200)
  })
})
