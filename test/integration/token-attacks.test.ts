/**
 * Crafted tokens (contract 4.7 and 4): each one is refused with 401 and a token code, never a 500,
 * by every token consumer: the Bearer check (GET /auth/sessions), POST /auth/verify and, for
 * refresh tokens, POST /auth/refresh.
 */
import t, { type Test } from 'tap'
import { calculateJwkThumbprint } from 'jose'
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { build, type HttpResult } from '../helper.js'
import { assemble, attackerKey, b64url, decodePart, nowSeconds, randomId, signEs256, signHs256 } from '../helpers/jwt-craft.js'

const HIGH_LIMITS = {
  LOGIN_IP_LIMIT: '100000',
  VERIFY_IP_LIMIT: '100000',
  PUBLIC_IP_LIMIT: '100000',
  API_USER_LIMIT: '100000',
  REFRESH_SESSION_LIMIT: '100000'
}

interface Case {
  name: string
  token: string
  /** Expected code at the Bearer check and at /auth/verify (default token_invalid). */
  code?: string
  /** False when /auth/verify would rightly accept the token (it is valid, just of the other type). */
  verify?: boolean
}

t.test('crafted tokens', async (t) => {
  const h = await build(t, { env: HIGH_LIMITS })
  const { access, refresh } = await h.login('alice')
  const realHeader = decodePart(access.split('.')[0]!)
  const realClaims = decodePart(access.split('.')[1]!)
  const kid = h.keyRing.signing.kid
  const key = h.keyRing.signing.privateKey
  const publicJwk = h.keyRing.publicJwks.keys[0]!
  t.equal(realHeader.kid, kid, 'the gateway signs with the ring\'s signing key')

  /** Valid access claims of alice's live session, with overrides (undefined removes a claim). */
  const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => {
    const now = nowSeconds()
    return { ...realClaims, jti: randomId(), iat: now, exp: now + 300, ...over }
  }
  const header = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ alg: 'ES256', kid, typ: 'JWT', ...over })

  t.test('control: a hand-made token with the real key and valid claims is accepted', async (t) => {
    const token = signEs256(key, header(), claims())
    const res = await h.request('GET', '/auth/sessions', { token })
    t.equal(res.status, 200, res.text)
    const v = await h.request('POST', '/auth/verify', { body: { token } })
    t.equal(v.status, 200, v.text)
    t.equal(v.body.token_type, 'access')
  })

  const attacker = attackerKey()
  const attackerKid = await calculateJwkThumbprint(attacker.publicJwk as { kty: string })
  const publicPem = createPublicKey({ key: publicJwk as unknown as JsonWebKey, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' }) as string
  const [ah, ap, as] = access.split('.') as [string, string, string]
  const now = nowSeconds()

  const cases: Case[] = [
    // alg none
    ...['none', 'None', 'NONE', 'nOnE'].map((alg) => ({ name: `alg ${alg}`, token: assemble({ alg, kid, typ: 'JWT' }, claims()) })),
    { name: 'alg none without kid', token: assemble({ alg: 'none' }, claims()) },
    // HMAC with the public key (algorithm confusion)
    { name: 'HS256 with the public key as PEM', token: signHs256(publicPem, header({ alg: 'HS256' }), claims()) },
    { name: 'HS256 with the public key as PEM, no kid', token: signHs256(publicPem, { alg: 'HS256', typ: 'JWT' }, claims()) },
    { name: 'HS256 with the public JWK as JSON', token: signHs256(JSON.stringify(publicJwk), header({ alg: 'HS256' }), claims()) },
    { name: 'HS256 with the public JWKS as JSON', token: signHs256(JSON.stringify(h.keyRing.publicJwks), header({ alg: 'HS256' }), claims()) },
    { name: 'HS256 with the x coordinate', token: signHs256(Buffer.from(publicJwk.x, 'base64url'), header({ alg: 'HS256' }), claims()) },
    // other algorithms in the header over a valid ES256 signature
    ...['ES384', 'ES512', 'RS256', 'PS256', 'EdDSA', 'es256'].map((alg) => ({ name: `alg ${alg} over an ES256 signature`, token: signEs256(key, header({ alg }), claims()) })),
    // kid
    { name: 'unknown kid', token: signEs256(key, header({ kid: 'no-such-key' }), claims()) },
    { name: 'path-like kid ../../etc/passwd', token: signEs256(key, header({ kid: '../../etc/passwd' }), claims()) },
    { name: 'path-like kid /dev/null', token: signEs256(key, header({ kid: '/dev/null' }), claims()) },
    { name: 'kid __proto__', token: signEs256(key, header({ kid: '__proto__' }), claims()) },
    { name: 'kid with SQL', token: signEs256(key, header({ kid: "' OR '1'='1" }), claims()) },
    { name: 'kid as an array holding the real kid', token: signEs256(key, header({ kid: [kid] }), claims()) },
    { name: 'kid as a number', token: signEs256(key, header({ kid: 1 }), claims()) },
    { name: 'missing kid', token: signEs256(key, { alg: 'ES256', typ: 'JWT' }, claims()) },
    // keys from the header
    { name: 'embedded jwk, kid = attacker thumbprint', token: signEs256(attacker.privateKey, header({ kid: attackerKid, jwk: attacker.publicJwk }), claims()) },
    { name: 'embedded jwk, kid = the real kid', token: signEs256(attacker.privateKey, header({ jwk: attacker.publicJwk }), claims()) },
    { name: 'embedded jwk, no kid', token: signEs256(attacker.privateKey, { alg: 'ES256', jwk: attacker.publicJwk }, claims()) },
    { name: 'jku, kid = attacker thumbprint', token: signEs256(attacker.privateKey, header({ kid: attackerKid, jku: 'http://127.0.0.1:1/jwks.json' }), claims()) },
    { name: 'jku, kid = the real kid', token: signEs256(attacker.privateKey, header({ jku: 'http://127.0.0.1:1/jwks.json' }), claims()) },
    { name: 'x5u, kid = attacker thumbprint', token: signEs256(attacker.privateKey, header({ kid: attackerKid, x5u: 'http://127.0.0.1:1/cert.pem' }), claims()) },
    { name: 'x5u, kid = the real kid', token: signEs256(attacker.privateKey, header({ x5u: 'http://127.0.0.1:1/cert.pem' }), claims()) },
    { name: 'ES256 by another P-256 key with the real kid', token: signEs256(attacker.privateKey, header(), claims()) },
    // crit
    { name: 'unknown crit ["foo"], validly signed', token: signEs256(key, header({ crit: ['foo'], foo: 'bar' }), claims()) },
    { name: 'crit ["b64"] with b64 false, validly signed', token: signEs256(key, header({ crit: ['b64'], b64: false }), claims()) },
    { name: 'crit that is not an array, validly signed', token: signEs256(key, header({ crit: 'foo', foo: 1 }), claims()) },
    // claims, validly signed
    { name: 'missing exp', token: signEs256(key, header(), claims({ exp: undefined })) },
    { name: 'expired', token: signEs256(key, header(), claims({ iat: now - 1000, exp: now - 60 })), code: 'token_expired' },
    { name: 'exp as a string', token: signEs256(key, header(), claims({ exp: String(now + 300) })) },
    { name: 'nbf in the future', token: signEs256(key, header(), claims({ nbf: now + 3600 })) },
    { name: 'iat in the future beyond the leeway', token: signEs256(key, header(), claims({ iat: now + 3600, exp: now + 4000 })) },
    { name: 'missing iat', token: signEs256(key, header(), claims({ iat: undefined })) },
    { name: 'wrong iss', token: signEs256(key, header(), claims({ iss: 'evil-gateway' })) },
    { name: 'missing iss', token: signEs256(key, header(), claims({ iss: undefined })) },
    { name: 'wrong aud', token: signEs256(key, header(), claims({ aud: 'someone-else' })) },
    { name: 'aud of refresh tokens (the issuer)', token: signEs256(key, header(), claims({ aud: h.config.jwt.issuer })) },
    { name: 'missing aud', token: signEs256(key, header(), claims({ aud: undefined })) },
    { name: 'missing sid', token: signEs256(key, header(), claims({ sid: undefined })) },
    { name: 'missing jti', token: signEs256(key, header(), claims({ jti: undefined })) },
    { name: 'missing token_type', token: signEs256(key, header(), claims({ token_type: undefined })) },
    { name: 'token_type id', token: signEs256(key, header(), claims({ token_type: 'id' })) },
    { name: 'sub as a number', token: signEs256(key, header(), claims({ sub: 1001 })) },
    { name: 'sub with Redis key characters', token: signEs256(key, header(), claims({ sub: '1001:*' })) },
    { name: 'sid with Redis key characters', token: signEs256(key, header(), claims({ sid: `${String(realClaims.sid)}}{x` })) },
    { name: 'roles not an array', token: signEs256(key, header(), claims({ roles: 'admin' })) },
    // payload shapes, validly signed
    { name: 'payload is a JSON array', token: signEs256(key, header(), [claims()]) },
    { name: 'payload is a JSON string', token: signEs256(key, header(), JSON.stringify('alice')) },
    { name: 'payload is a JSON number', token: signEs256(key, header(), '42') },
    { name: 'payload is JSON null', token: signEs256(key, header(), 'null') },
    { name: 'payload is not JSON', token: signEs256(key, header(), 'not json') },
    { name: 'header is not JSON', token: `${b64url('not json')}.${ap}.${as}` },
    { name: 'header is a JSON array', token: `${b64url(['ES256'])}.${ap}.${as}` },
    // signature and shape
    { name: 'tampered payload (sub changed, signature kept)', token: `${ah}.${b64url({ ...realClaims, sub: '1002' })}.${as}` },
    { name: 'tampered payload (roles changed, signature kept)', token: `${ah}.${b64url({ ...realClaims, roles: ['admin'] })}.${as}` },
    { name: 'tampered header (kid removed, signature kept)', token: `${b64url({ alg: 'ES256', typ: 'JWT' })}.${ap}.${as}` },
    { name: 'stripped signature with trailing dot', token: `${ah}.${ap}.` },
    { name: 'stripped signature without trailing dot', token: `${ah}.${ap}` },
    { name: 'all-zero signature', token: `${ah}.${ap}.${Buffer.alloc(64).toString('base64url')}` },
    { name: 'truncated signature', token: `${ah}.${ap}.${as.slice(0, 40)}` },
    { name: 'DER-encoded signature', token: `${ah}.${ap}.${Buffer.concat([Buffer.from([0x30, 0x44, 0x02, 0x20]), Buffer.from(as, 'base64url').subarray(0, 32), Buffer.from([0x02, 0x20]), Buffer.from(as, 'base64url').subarray(32)]).toString('base64url')}` },
    { name: '2 segments', token: `${ah}.${ap}` },
    { name: '4 segments', token: `${ah}.${ap}.${as}.${as}` },
    { name: '5 segments (JWE shape)', token: `${ah}.${ap}.${as}.${as}.${as}` },
    { name: 'empty segments', token: '..' },
    { name: 'one segment', token: ah },
    { name: "'+' in the signature", token: `${ah}.${ap}.+${as.slice(1)}` },
    { name: "'/' in the payload", token: `${ah}.${ap.slice(0, 10)}/${ap.slice(11)}.${as}` },
    { name: "'=' padding on the signature", token: `${ah}.${ap}.${as}=` },
    { name: "'=' padding on the payload", token: `${ah}.${ap}=.${as}` },
    { name: "'*' in the header", token: `*${ah}.${ap}.${as}` },
    { name: 'standard base64 alphabet', token: /[-_]/.test(access) ? access.replace(/-/g, '+').replace(/_/g, '/') : `${ah}.${ap}.${as.slice(0, -1)}/` },
    { name: 'too long', token: `${ah}.${b64url({ ...realClaims, pad: 'x'.repeat(7000) })}.${as}` },
    // sessions
    { name: 'validly signed, session does not exist', token: signEs256(key, header(), claims({ sid: randomId() })), code: 'token_revoked' },
    { name: 'validly signed, user does not exist', token: signEs256(key, header(), claims({ sub: '999999' })), code: 'token_revoked' },
    // the wrong type
    { name: 'refresh token used as access token', token: refresh, verify: false },
    { name: 'validly signed refresh-typed token with the access aud', token: signEs256(key, header(), claims({ token_type: 'refresh' })) }
  ]

  const expectRefused = (t: Test, res: HttpResult, code: string, what: string): void => {
    t.equal(res.status, 401, `${what}: 401 (${res.text})`)
    t.equal(res.body?.code, code, `${what}: code`)
    t.match(res.headers.get('content-type'), /^application\/problem\+json/, `${what}: problem+json`)
    t.match(res.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/, `${what}: WWW-Authenticate`)
    t.notMatch(res.text, /\n\s+at /, `${what}: no stack trace`)
  }

  for (const c of cases) {
    t.test(c.name, async (t) => {
      const code = c.code ?? 'token_invalid'
      expectRefused(t, await h.request('GET', '/auth/sessions', { token: c.token }), code, 'Bearer')
      if (c.verify !== false) {
        const v = await h.request('POST', '/auth/verify', { body: { token: c.token } })
        t.not(v.status, 500, 'verify is never a 500')
        if (c.name === 'too long') {
          // Longer than the body schema allows: a 400 is as good as a 401 here.
          t.ok([400, 401].includes(v.status), `verify: ${v.status}`)
        } else {
          expectRefused(t, v, code, 'verify')
        }
      }
    })
  }

  t.test('an access token posted to /auth/refresh', async (t) => {
    const res = await h.request('POST', '/auth/refresh', { body: { refresh: access } })
    expectRefused(t, res, 'token_invalid', 'refresh')
  })

  t.test('crafted tokens posted to /auth/refresh', async (t) => {
    const refreshClaims = decodePart(refresh.split('.')[1]!)
    const [rh, rp] = refresh.split('.') as [string, string, string]
    const crafted: Array<[string, string, string?]> = [
      ['alg none', assemble({ alg: 'none', kid }, { ...refreshClaims, jti: randomId() })],
      ['HS256 with the public key', signHs256(publicPem, header({ alg: 'HS256' }), refreshClaims)],
      ['attacker key, real kid', signEs256(attacker.privateKey, header(), refreshClaims)],
      ['embedded jwk', signEs256(attacker.privateKey, header({ kid: attackerKid, jwk: attacker.publicJwk }), refreshClaims)],
      ['stripped signature', `${rh}.${rp}.`],
      ['tampered sub', `${rh}.${b64url({ ...refreshClaims, sub: '1002' })}.${refresh.split('.')[2]!}`],
      ['expired, validly signed', signEs256(key, header(), { ...refreshClaims, iat: now - 1000, exp: now - 10 }), 'token_expired'],
      ['wrong aud, validly signed', signEs256(key, header(), { ...refreshClaims, aud: h.config.jwt.audience })]
    ]
    for (const [name, token, code] of crafted) {
      expectRefused(t, await h.request('POST', '/auth/refresh', { body: { refresh: token } }), code ?? 'token_invalid', name)
    }
    // None of the above spent the real refresh token.
    const ok = await h.request('POST', '/auth/refresh', { body: { refresh } })
    t.equal(ok.status, 200, 'the real refresh token still works')
  })

  t.test('odd Authorization headers', async (t) => {
    const forms = ['Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=', 'Bearer', 'Bearer ', 'Bearer  a b', `Bearer ${access} extra`,
      `Bearer ${access},Bearer ${access}`, `Token ${access}`, 'Bearer\t' + access, '', 'Bearer ....', 'Bearer é', `${access}`]
    for (const authorization of forms) {
      const res = await h.request('GET', '/auth/sessions', { headers: { authorization } })
      const what = JSON.stringify(authorization.replace(access, '<access>').replace(access, '<access>'))
      t.equal(res.status, 401, `${what}: 401 (${res.text})`)
      t.ok(['token_missing', 'token_invalid'].includes(res.body?.code), `${what}: code ${res.body?.code}`)
      t.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, `${what}: WWW-Authenticate`)
    }
  })
})
