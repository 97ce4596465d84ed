/**
 * The crafted tokens of the attack suite (docs/tokens-and-sessions.md and docs/errors.md), built from a real access and refresh
 * token of the gateway and its key ring. test/integration/token-attacks.test.ts sends them to every
 * token consumer over HTTP; test/unit/fast-jwt-strictness.test.ts runs the same list against jose
 * and fast-jwt directly, so both always see exactly the same cases.
 */
import { calculateJwkThumbprint } from 'jose'
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import type { KeyRing } from '../../src/tokens/key-ring.js'
import { assemble, attackerKey, b64url, decodePart, nowSeconds, randomId, signEs256, signHs256 } from './jwt-craft.js'

export interface AttackCase {
  name: string
  token: string
  /** Expected code at the Bearer check and at /auth/verify (default token_invalid). */
  code?: string
  /** False when /auth/verify would rightly accept the token (it is valid, just of the other type). */
  verify?: boolean
}

export interface AttackInput {
  /** A real access token of a live session, and the refresh token of that session. */
  access: string
  refresh: string
  keyRing: KeyRing
  /** The gateway's `iss` (also the `aud` of refresh tokens). */
  issuer: string
  /** The API `aud` of access tokens. */
  audience: string
}

export interface Attacks {
  /** Valid access claims of the session of `access`, with overrides (undefined removes a claim). */
  claims: (over?: Record<string, unknown>) => Record<string, unknown>
  /** The gateway's header (ES256, the signing kid, typ JWT), with overrides. */
  header: (over?: Record<string, unknown>) => Record<string, unknown>
  /** Crafted tokens presented as access tokens (Bearer, /auth/verify). */
  access: AttackCase[]
  /** Crafted tokens presented as refresh tokens (POST /auth/refresh). */
  refresh: AttackCase[]
}

export async function craftAttacks ({ access, refresh, keyRing, issuer, audience }: AttackInput): Promise<Attacks> {
  const realClaims = decodePart(access.split('.')[1]!)
  const kid = keyRing.signing.kid
  const key = keyRing.signing.privateKey
  const publicJwk = keyRing.publicJwks.keys[0]!

  const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => {
    const now = nowSeconds()
    return { ...realClaims, jti: randomId(), iat: now, exp: now + 300, ...over }
  }
  const header = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ alg: 'ES256', kid, typ: 'JWT', ...over })

  const attacker = attackerKey()
  const attackerKid = await calculateJwkThumbprint(attacker.publicJwk as { kty: string })
  const publicPem = createPublicKey({ key: publicJwk as unknown as JsonWebKey, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' }) as string
  const [ah, ap, as] = access.split('.') as [string, string, string]
  const now = nowSeconds()

  const accessCases: AttackCase[] = [
    // alg none
    ...['none', 'None', 'NONE', 'nOnE'].map((alg) => ({ name: `alg ${alg}`, token: assemble({ alg, kid, typ: 'JWT' }, claims()) })),
    { name: 'alg none without kid', token: assemble({ alg: 'none' }, claims()) },
    // HMAC with the public key (algorithm confusion)
    { name: 'HS256 with the public key as PEM', token: signHs256(publicPem, header({ alg: 'HS256' }), claims()) },
    { name: 'HS256 with the public key as PEM, no kid', token: signHs256(publicPem, { alg: 'HS256', typ: 'JWT' }, claims()) },
    { name: 'HS256 with the public JWK as JSON', token: signHs256(JSON.stringify(publicJwk), header({ alg: 'HS256' }), claims()) },
    { name: 'HS256 with the public JWKS as JSON',
      token: signHs256(JSON.stringify(keyRing.publicJwks), header({ alg: 'HS256' }), claims()) },
    { name: 'HS256 with the x coordinate', token: signHs256(Buffer.from(publicJwk.x, 'base64url'), header({ alg: 'HS256' }), claims()) },
    // other algorithms in the header over a valid ES256 signature
    ...['ES384', 'ES512', 'RS256', 'PS256', 'EdDSA', 'es256'].map((alg) =>
      ({ name: `alg ${alg} over an ES256 signature`, token: signEs256(key, header({ alg }), claims()) })),
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
    { name: 'embedded jwk, kid = attacker thumbprint',
      token: signEs256(attacker.privateKey, header({ kid: attackerKid, jwk: attacker.publicJwk }), claims()) },
    { name: 'embedded jwk, kid = the real kid', token: signEs256(attacker.privateKey, header({ jwk: attacker.publicJwk }), claims()) },
    { name: 'embedded jwk, no kid', token: signEs256(attacker.privateKey, { alg: 'ES256', jwk: attacker.publicJwk }, claims()) },
    { name: 'jku, kid = attacker thumbprint', token: signEs256(attacker.privateKey,
      header({ kid: attackerKid, jku: 'http://127.0.0.1:1/jwks.json' }), claims()) },
    { name: 'jku, kid = the real kid', token: signEs256(attacker.privateKey, header({ jku: 'http://127.0.0.1:1/jwks.json' }), claims()) },
    { name: 'x5u, kid = attacker thumbprint', token: signEs256(attacker.privateKey,
      header({ kid: attackerKid, x5u: 'http://127.0.0.1:1/cert.pem' }), claims()) },
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
    { name: 'aud of refresh tokens (the issuer)', token: signEs256(key, header(), claims({ aud: issuer })) },
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
    { name: 'DER-encoded signature',
      token: `${ah}.${ap}.${Buffer.concat([Buffer.from([0x30, 0x44, 0x02, 0x20]), Buffer.from(as, 'base64url').subarray(0, 32),
        Buffer.from([0x02, 0x20]), Buffer.from(as, 'base64url').subarray(32)]).toString('base64url')}` },
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
    { name: 'standard base64 alphabet', token: /[-_]/.test(access) ? access.replace(/-/g, '+').replace(/_/g, '/')
      : `${ah}.${ap}.${as.slice(0, -1)}/` },
    { name: 'too long', token: `${ah}.${b64url({ ...realClaims, pad: 'x'.repeat(7000) })}.${as}` },
    // sessions
    { name: 'validly signed, session does not exist', token: signEs256(key, header(), claims({ sid: randomId() })), code: 'token_revoked' },
    { name: 'validly signed, user does not exist', token: signEs256(key, header(), claims({ sub: '999999' })), code: 'token_revoked' },
    // the wrong type
    { name: 'refresh token used as access token', token: refresh, verify: false },
    { name: 'validly signed refresh-typed token with the access aud', token: signEs256(key, header(), claims({ token_type: 'refresh' })) }
  ]

  const refreshClaims = decodePart(refresh.split('.')[1]!)
  const [rh, rp, rs] = refresh.split('.') as [string, string, string]
  const refreshCases: AttackCase[] = [
    { name: 'alg none', token: assemble({ alg: 'none', kid }, { ...refreshClaims, jti: randomId() }) },
    { name: 'HS256 with the public key', token: signHs256(publicPem, header({ alg: 'HS256' }), refreshClaims) },
    { name: 'attacker key, real kid', token: signEs256(attacker.privateKey, header(), refreshClaims) },
    { name: 'embedded jwk', token: signEs256(attacker.privateKey, header({ kid: attackerKid, jwk: attacker.publicJwk }), refreshClaims) },
    { name: 'stripped signature', token: `${rh}.${rp}.` },
    { name: 'tampered sub', token: `${rh}.${b64url({ ...refreshClaims, sub: '1002' })}.${rs}` },
    { name: 'expired, validly signed', token: signEs256(key, header(), { ...refreshClaims, iat: now - 1000, exp: now - 10 }),
      code: 'token_expired' },
    { name: 'wrong aud, validly signed', token: signEs256(key, header(), { ...refreshClaims, aud: audience }) }
  ]

  return { claims, header, access: accessCases, refresh: refreshCases }
}
