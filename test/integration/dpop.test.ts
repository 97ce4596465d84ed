/**
 * DPoP (RFC 9449) from the outside: real HTTP to listening gateways. Login and refresh bind the
 * tokens to the proof's key; a bound token works only as `DPoP` with a fresh proof of that key for
 * this very request; every attack of docs/dpop.md is refused with RFC 9449's errors, revokes
 * nothing, and is logged. Replays are refused by the other replica too.
 */
import t, { type Test } from 'tap'
import { SignJWT, base64url, exportJWK, generateKeyPair } from 'jose'
import { build, type Harness, type HttpResult } from '../helper.js'
import { RELAXED_LIMITS, claimsOf } from '../helpers/auth.js'
import { captureLogLines } from '../helpers/log-capture.js'
import { ath, dpopHeaders, dpopKey, type DpopKey } from '../helpers/dpop.js'
import { askFrom } from '../helpers/forward-auth.js'

interface Bound { access: string, refresh: string, token_type: string }

async function boundLogin (t: Test, h: Harness, key: DpopKey, username = 'alice'): Promise<Bound> {
  const res = await h.request('POST', '/auth/login', {
    body: { username, password: `${username}-password` },
    headers: { dpop: await key.proof({ method: 'POST', url: `${h.url}/auth/login` }) }
  })
  t.equal(res.status, 200, 'bound login: 200')
  return res.body
}

async function dpopGet (
  h: Harness,
  key: DpopKey,
  token: string,
  path: string,
  extra: Parameters<DpopKey['proof']>[0] extends infer O ? Partial<O> : never = {}
): Promise<HttpResult> {
  const proof = await key.proof({ method: 'GET', url: `${h.url}${path}`, token, ...extra })
  return await h.request('GET', path, { headers: dpopHeaders(token, proof) })
}

function assertProofRefused (t: Test, res: HttpResult, what: string, code = 'invalid_dpop_proof'): void {
  t.equal(res.status, 401, `${what}: 401`)
  t.equal(res.body?.code, code, `${what}: ${code}`)
  const challenge = res.headers.get('www-authenticate') ?? ''
  t.match(challenge, new RegExp(`^DPoP .*error="${code}"`), `${what}: DPoP challenge`)
  t.match(challenge, /algs="ES256 [^"]*"/, `${what}: names the algorithms`)
}

t.test('DPoP-bound sessions', async (t) => {
  const lines: string[] = []
  const { stream } = captureLogLines(lines)
  const a = await build(t, { env: RELAXED_LIMITS, logger: { level: 'info', stream } })
  const b = await build(t, { env: RELAXED_LIMITS, redis: a.redis, keyRing: a.keyRing })
  const key = await dpopKey()
  const thief = await dpopKey()

  await t.test('login with a proof binds both tokens and says DPoP', async (t) => {
    const bound = await boundLogin(t, a, key)
    t.equal(bound.token_type, 'DPoP')
    t.same(claimsOf(bound.access).cnf, { jkt: key.jkt }, 'cnf.jkt of the access token is the key\'s thumbprint')
    t.same(claimsOf(bound.refresh).cnf, { jkt: key.jkt }, 'the refresh token is bound too')
    const plain = await a.login('alice')
    t.equal((plain as unknown as Bound).token_type, 'Bearer', 'without a proof: Bearer')
    t.notOk('cnf' in claimsOf(plain.access))
  })

  await t.test('a bound token works with a proof, on the own routes and through the proxy', async (t) => {
    const bound = await boundLogin(t, a, key)
    t.equal((await dpopGet(a, key, bound.access, '/auth/sessions')).status, 200, 'own route')
    const me = await dpopGet(a, key, bound.access, '/api/users/me')
    t.equal(me.status, 200, 'proxied route')
    t.equal(me.body.username, 'alice')
    t.equal((await dpopGet(b, key, bound.access, '/api/users/me')).status, 200, 'the other replica too')
    const withQuery = await a.request(
      'GET',
      '/api/users/me?x=1',
      { headers: dpopHeaders(bound.access, await key.proof({ method: 'GET', url: `${a.url}/api/users/me`, token: bound.access })) }
    )
    t.equal(withQuery.status, 200, 'htu names the URL without its query')
  })

  await t.test('attacks on a bound token', async (t) => {
    const bound = await boundLogin(t, a, key)
    const token = bound.access
    const url = `${a.url}/api/users/me`
    const now = Math.floor(Date.now() / 1000)

    const asBearer = await a.request('GET', '/api/users/me', { token })
    t.equal(asBearer.status, 401, 'a bound token as Bearer: 401')
    t.equal(asBearer.body.code, 'token_invalid')
    t.equal(
      (await a.request('GET', '/api/users/me', { headers: { authorization: `DPoP ${token}` } })).body.code,
      'invalid_dpop_proof',
      'DPoP without a proof'
    )

    assertProofRefused(t, await dpopGet(a, thief, token, '/api/users/me'), 'a proof of another key')
    assertProofRefused(
      t,
      await a.request('GET', '/api/users/me', { headers: dpopHeaders(token, await key.proof({ method: 'POST', url, token })) }),
      'wrong htm'
    )
    assertProofRefused(
      t,
      await a.request(
        'GET',
        '/api/users/me',
        { headers: dpopHeaders(token, await key.proof({ method: 'GET', url: `${a.url}/api/orders`, token })) }
      ),
      'wrong htu (path)'
    )
    assertProofRefused(t, await a.request('GET', '/api/users/me', { headers: dpopHeaders(token, await key.proof({ method: 'GET', url: 'http://evil.example/api/users/me', token })) }), 'wrong htu (host)')
    assertProofRefused(t, await dpopGet(a, key, token, '/api/users/me', { token: 'another-token' }), 'wrong ath')
    assertProofRefused(t, await dpopGet(a, key, token, '/api/users/me', { omit: ['ath'] }), 'no ath')
    assertProofRefused(t, await dpopGet(a, key, token, '/api/users/me', { iat: now - 120 }), 'iat too old')
    assertProofRefused(t, await dpopGet(a, key, token, '/api/users/me', { iat: now + 120 }), 'iat in the future')
    assertProofRefused(t, await dpopGet(a, key, token, '/api/users/me', { omit: ['jti'] }), 'no jti')
    assertProofRefused(t, await dpopGet(a, key, token, '/api/users/me', { header: { typ: 'JWT' } }), 'typ JWT')

    const claims = { htm: 'GET', htu: url, iat: now, jti: 'none-1', ath: ath(token) }
    const none =
      `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: key.jwk }))}.${base64url.encode(JSON.stringify(claims))}.`
    assertProofRefused(t, await a.request('GET', '/api/users/me', { headers: dpopHeaders(token, none) }), 'alg none')
    const hs = await new SignJWT({ ...claims, jti: 'hs-1' }).setProtectedHeader({
      alg: 'HS256',
      typ: 'dpop+jwt',
      jwk: key.jwk
    }).sign(new TextEncoder().encode('secret'))
    assertProofRefused(t, await a.request('GET', '/api/users/me', { headers: dpopHeaders(token, hs) }), 'HS256')
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    const privateJwk = await exportJWK(privateKey)
    const withPrivate = await new SignJWT({ ...claims, jti: 'priv-1' }).setProtectedHeader({
      alg: 'ES256',
      typ: 'dpop+jwt',
      jwk: privateJwk
    }).sign(privateKey)
    assertProofRefused(t, await a.request('GET', '/api/users/me', { headers: dpopHeaders(token, withPrivate) }), 'a private key in jwk')

    // Replays: the same proof twice, on the same replica and on the other.
    const proof = await key.proof({ method: 'GET', url, token })
    t.equal((await a.request('GET', '/api/users/me', { headers: dpopHeaders(token, proof) })).status, 200, 'first use')
    assertProofRefused(t, await a.request('GET', '/api/users/me', { headers: dpopHeaders(token, proof) }), 'replay on the same replica')
    const proofB = await key.proof({ method: 'GET', url: `${b.url}/api/users/me`, token })
    t.equal((await b.request('GET', '/api/users/me', { headers: dpopHeaders(token, proofB) })).status, 200, 'first use on b')
    assertProofRefused(t, await b.request('GET', '/api/users/me', { headers: dpopHeaders(token, proofB) }), 'replay on b')

    // Nothing was revoked by any of this.
    t.equal((await dpopGet(a, key, token, '/api/users/me')).status, 200, 'the owner still gets through')
  })

  await t.test('a replay reaches the other replica: refused there too', async (t) => {
    // Both replicas answer under one address, as behind a load balancer: the proof names it.
    const bound = await boundLogin(t, a, key)
    const shared = 'http://gateway.example'
    const proof = await key.proof({ method: 'GET', url: `${shared}/api/users/me`, token: bound.access })
    const headers = { ...dpopHeaders(bound.access, proof), host: 'gateway.example' }
    t.equal((await askFrom(a.url, '127.0.0.1', 'GET', '/api/users/me', headers)).status, 200, 'used on replica a')
    const onB = await askFrom(b.url, '127.0.0.1', 'GET', '/api/users/me', headers)
    t.equal(onB.status, 401, 'replayed on replica b: 401')
    t.equal(onB.body?.code, 'invalid_dpop_proof')
    t.match(String(onB.headers['www-authenticate']), /^DPoP .*error="invalid_dpop_proof"/)
  })

  await t.test('refresh: only with a proof of the same key', async (t) => {
    const bound = await boundLogin(t, a, key)
    const refreshWith = async (k: DpopKey | null, token: string): Promise<HttpResult> => await a.request('POST', '/auth/refresh', {
      body: { refresh: token },
      ...(k !== null ? { headers: { dpop: await k.proof({ method: 'POST', url: `${a.url}/auth/refresh` }) } } : {})
    })
    const stolen = await refreshWith(null, bound.refresh)
    t.equal(stolen.status, 400, 'a stolen bound refresh token without the key: 400')
    t.equal(stolen.body.code, 'invalid_dpop_proof')
    const otherKey = await refreshWith(thief, bound.refresh)
    t.equal(otherKey.status, 400, 'with a proof of another key: 400')
    t.equal(otherKey.body.code, 'invalid_dpop_proof')
    const owner = await refreshWith(key, bound.refresh)
    t.equal(owner.status, 200, 'the owner refreshes: nothing was revoked')
    t.equal(owner.body.token_type, 'DPoP')
    t.same(claimsOf(owner.body.access).cnf, { jkt: key.jkt }, 'the new access token is bound to the same key')
    t.same(claimsOf(owner.body.refresh).cnf, { jkt: key.jkt }, 'and so is the new refresh token')

    const plain = await a.login('bob')
    const plainRefresh = await refreshWith(key, plain.refresh)
    t.equal(plainRefresh.status, 200, 'an unbound refresh token with a proof refreshes')
    t.equal(plainRefresh.body.token_type, 'Bearer', 'and stays a bearer session')
  })

  await t.test('token endpoint: a bad proof is 400 invalid_dpop_proof; a replayed login proof too', async (t) => {
    const bad = await a.request(
      'POST',
      '/auth/login',
      {
        body: { username: 'alice', password: 'alice-password' },
        headers: { dpop: await key.proof({ method: 'POST', url: `${a.url}/auth/refresh` }) }
      }
    )
    t.equal(bad.status, 400)
    t.equal(bad.body.code, 'invalid_dpop_proof')
    t.match(bad.headers.get('content-type'), /^application\/problem\+json/)
    const proof = await key.proof({ method: 'POST', url: `${a.url}/auth/login` })
    const body = { username: 'alice', password: 'alice-password' }
    t.equal((await a.request('POST', '/auth/login', { body, headers: { dpop: proof } })).status, 200)
    const again = await a.request('POST', '/auth/login', { body, headers: { dpop: proof } })
    t.equal(again.status, 400, 'the same proof again')
    t.equal(again.body.code, 'invalid_dpop_proof')
  })

  await t.test('simplejwt endpoints bind too', async (t) => {
    const res = await a.request(
      'POST',
      '/api/token/',
      {
        body: { username: 'alice', password: 'alice-password' },
        headers: { dpop: await key.proof({ method: 'POST', url: `${a.url}/api/token/` }) }
      }
    )
    t.equal(res.status, 200)
    t.equal(res.body.token_type, 'DPoP')
    t.same(claimsOf(res.body.access).cnf, { jkt: key.jkt })
    const refreshed = await a.request(
      'POST',
      '/api/token/refresh/',
      { body: { refresh: res.body.refresh }, headers: { dpop: await key.proof({ method: 'POST', url: `${a.url}/api/token/refresh/` }) } }
    )
    t.equal(refreshed.status, 200)
    t.equal(refreshed.body.token_type, 'DPoP')
    const stolen = await a.request('POST', '/api/token/refresh/', { body: { refresh: refreshed.body.refresh } })
    t.equal(stolen.status, 400, 'without the key: 400')
    t.equal(stolen.body.code, 'invalid_dpop_proof')
  })

  await t.test('metadata and introspection', async (t) => {
    const meta = await a.request('GET', '/.well-known/oauth-authorization-server')
    t.ok((meta.body.dpop_signing_alg_values_supported as string[]).includes('ES256'))
    t.notOk((meta.body.dpop_signing_alg_values_supported as string[]).includes('HS256'))
    const admin = await a.login('admin')
    const created = await a.request(
      'POST',
      '/admin/clients',
      { token: admin.access, body: { name: 'introspector', scopes: ['tokens:introspect'] } }
    )
    const bound = await boundLogin(t, a, key)
    const basic = 'Basic ' + Buffer.from(`${created.body.client_id as string}:${created.body.client_secret as string}`).toString('base64')
    const answer = await a.request(
      'POST',
      '/oauth/introspect',
      { rawBody: `token=${bound.access}`, contentType: 'application/x-www-form-urlencoded', headers: { authorization: basic } }
    )
    t.match(answer.body, { active: true, token_type: 'DPoP', cnf: { jkt: key.jkt } })
    const refresh = await a.request(
      'POST',
      '/oauth/introspect',
      { rawBody: `token=${bound.refresh}`, contentType: 'application/x-www-form-urlencoded', headers: { authorization: basic } }
    )
    t.match(refresh.body, { active: true, token_type: 'refresh_token', cnf: { jkt: key.jkt } })
  })

  await t.test('events: dpop_proof_rejected and token_unbound_use, never the proof', async (t) => {
    const events = lines.map((l) => JSON.parse(l) as { event?: string, reason?: string }).filter((e) => e.event !== undefined)
    t.ok(events.some((e) => e.event === 'dpop_proof_rejected' && e.reason === 'proof replayed'), 'a replay was logged')
    t.ok(events.some((e) => e.event === 'dpop_proof_rejected' && e.reason === 'htu does not match the request'), 'a wrong htu was logged')
    t.ok(events.some((e) => e.event === 'token_unbound_use' && e.reason === 'bearer_scheme'), 'the bound token as Bearer was logged')
    t.ok(events.some((e) => e.event === 'token_unbound_use' && e.reason === 'no_proof'), 'the stolen refresh token was logged')
    t.notOk(lines.some((l) => /eyJ[\w-]+\.eyJ/.test(l)), 'no proof or token in the logs')
  })
})

t.test('DPOP_REQUIRED and DPOP_NONCE', async (t) => {
  const a = await build(t, { env: { ...RELAXED_LIMITS, DPOP_REQUIRED: 'true', DPOP_NONCE: 'true' } })
  const b = await build(t, { env: { ...RELAXED_LIMITS, DPOP_REQUIRED: 'true', DPOP_NONCE: 'true' }, redis: a.redis, keyRing: a.keyRing })
  const key = await dpopKey()
  const body = { username: 'alice', password: 'alice-password' }

  const noProof = await a.request('POST', '/auth/login', { body })
  t.equal(noProof.status, 400, 'DPOP_REQUIRED: a login without a proof is 400')
  t.equal(noProof.body.code, 'invalid_dpop_proof')

  const noNonce = await a.request(
    'POST',
    '/auth/login',
    { body, headers: { dpop: await key.proof({ method: 'POST', url: `${a.url}/auth/login` }) } }
  )
  t.equal(noNonce.status, 400, 'a proof without the nonce: 400')
  t.equal(noNonce.body.code, 'use_dpop_nonce')
  const nonce = noNonce.headers.get('dpop-nonce')
  t.ok(nonce, 'the answer hands out the nonce')

  const login = await a.request(
    'POST',
    '/auth/login',
    { body, headers: { dpop: await key.proof({ method: 'POST', url: `${a.url}/auth/login`, nonce: nonce! }) } }
  )
  t.equal(login.status, 200, 'with the nonce: 200')
  t.equal(login.body.token_type, 'DPoP')
  const token = login.body.access as string

  const withoutNonce = await b.request(
    'GET',
    '/api/users/me',
    { headers: dpopHeaders(token, await key.proof({ method: 'GET', url: `${b.url}/api/users/me`, token })) }
  )
  t.equal(withoutNonce.status, 401, 'a protected request without the nonce: 401')
  t.equal(withoutNonce.body.code, 'use_dpop_nonce')
  t.match(withoutNonce.headers.get('www-authenticate'), /^DPoP .*error="use_dpop_nonce"/)
  t.ok(withoutNonce.headers.get('dpop-nonce'), 'with the nonce to use')
  const ok = await b.request(
    'GET',
    '/api/users/me',
    { headers: dpopHeaders(token, await key.proof({ method: 'GET', url: `${b.url}/api/users/me`, token, nonce: nonce! })) }
  )
  t.equal(ok.status, 200, 'the nonce replica a issued works on replica b')
  t.ok(ok.headers.get('dpop-nonce'), 'a successful answer names the nonce too')
  const forged = await b.request(
    'GET',
    '/api/users/me',
    { headers: dpopHeaders(token, await key.proof({ method: 'GET', url: `${b.url}/api/users/me`, token, nonce: 'made-up' })) }
  )
  t.equal(forged.body.code, 'use_dpop_nonce', 'a made-up nonce is refused')
})

t.test('forward authentication checks the proof against the client\'s request', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, FORWARD_AUTH_PROXIES: '127.0.0.2=traefik' } })
  const key = await dpopKey()
  const bound = await boundLogin(t, h, key)
  const asked = async (
    proofUrl: string,
    proof?: string
  ): Promise<Awaited<ReturnType<typeof askFrom>>> => await askFrom(h.url, '127.0.0.2', 'GET', '/auth/check', {
    'x-forwarded-method': 'GET',
    'x-forwarded-uri': '/api/users/me?page=1',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'app.example',
    ...dpopHeaders(bound.access, proof ?? await key.proof({ method: 'GET', url: proofUrl, token: bound.access }))
  })
  const ok = await asked('https://app.example/api/users/me')
  t.equal(ok.status, 200, 'htu = X-Forwarded-Proto :// X-Forwarded-Host + the original path')
  t.equal(ok.headers['x-user-name'], 'alice')
  const own = await asked(`${h.url}/auth/check`)
  t.equal(own.status, 401, 'a proof naming the gateway\'s own URL: 401')
  t.equal(own.body?.code, 'invalid_dpop_proof')
  t.match(String(own.headers['www-authenticate']), /^DPoP .*error="invalid_dpop_proof"/)
  const proof = await key.proof({ method: 'GET', url: 'https://app.example/api/users/me', token: bound.access })
  t.equal((await asked('', proof)).status, 200, 'first use')
  t.equal((await asked('', proof)).body?.code, 'invalid_dpop_proof', 'a replay through the proxy')
  const bearer = await askFrom(
    h.url,
    '127.0.0.2',
    'GET',
    '/auth/check',
    { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/users/me', authorization: `Bearer ${bound.access}` }
  )
  t.equal(bearer.status, 401, 'the bound token as Bearer through the proxy')
  t.equal(bearer.body?.code, 'token_invalid')
})
