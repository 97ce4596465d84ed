/**
 * Issue 13: is fast-jwt (the verifier under @fastify/jwt), configured like our jose path, at least
 * as strict? Every crafted token of the attack suite (test/helpers/attack-tokens.ts) goes to
 *  - jose's jwtVerify with token-service.ts's options, alone, and fast-jwt alone (library level);
 *  - TokenService (jose + our checks) and fast-jwt + the same checks (bench/fast-jwt-verifier.ts),
 *    which must answer with the same code.
 * Then a few probes outside the suite, where the two libraries differ or could.
 */
import t from 'tap'
import { createSign, KeyObject } from 'node:crypto'
import { jwtVerify, type JWTHeaderParameters } from 'jose'
import { GatewayError } from '../../src/errors.js'
import { KeyRing } from '../../src/tokens/key-ring.js'
import { TokenService } from '../../src/tokens/token-service.js'
import { FastJwtTokenVerifier, type FastJwtMode } from '../../bench/fast-jwt-verifier.js'
import { craftAttacks } from '../helpers/attack-tokens.js'
import { b64url, decodePart, nowSeconds, randomId, signEs256 } from '../helpers/jwt-craft.js'

const ISSUER = 'auth-gateway'
const AUDIENCE = 'api'
const MODES: FastJwtMode[] = ['key-callback', 'plugin']
type Expected = 'access' | 'refresh'

/** The same call as src/tokens/token-service.ts makes, without the checks that follow it there. */
async function joseAlone (keys: KeyRing, token: string, expected: Expected): Promise<string> {
  try {
    await jwtVerify(token, (header: JWTHeaderParameters) => {
      const key = keys.publicKey(header.kid)
      if (key === undefined) throw new Error('no key')
      return key
    }, {
      algorithms: ['ES256'],
      issuer: ISSUER,
      audience: expected === 'access' ? AUDIENCE : ISSUER,
      requiredClaims: ['exp', 'iat', 'sub', 'jti', 'token_type']
    })
    return 'accepted'
  } catch (err) {
    return `refused (${(err as { code?: string }).code ?? (err as Error).message})`
  }
}

async function fastAlone (v: FastJwtTokenVerifier, token: string, expected: Expected): Promise<string> {
  try {
    await v.raw(token, expected)
    return 'accepted'
  } catch (err) {
    return `refused (${(err as { code?: string }).code ?? (err as Error).message})`
  }
}

async function code (verify: () => Promise<unknown>): Promise<string> {
  try {
    await verify()
    return 'verified'
  } catch (err) {
    return err instanceof GatewayError ? err.code : `threw ${String(err)}`
  }
}

/** A compact JWS over the exact header and payload bytes given (the helpers would normalize the JSON). */
function signRaw (key: KeyObject, header: string | Record<string, unknown>, payloadBytes: Buffer): string {
  const input = `${b64url(header)}.${payloadBytes.toString('base64url')}`
  const sig = createSign('sha256').update(input).sign({ key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${sig.toString('base64url')}`
}

t.test('the attack suite against jose and fast-jwt', async (t) => {
  const keys = await KeyRing.ephemeral()
  const service = new TokenService(keys, { issuer: ISSUER, audience: AUDIENCE, accessTtl: 900, refreshTtl: 3600, cacheSize: 0 })
  const sid = randomId()
  const access = (await service.signAccess({ userId: '1001', username: 'alice', roles: ['user'] }, sid)).token
  const refresh = (await service.signRefresh('1001', sid)).token
  const attacks = await craftAttacks({ access, refresh, keyRing: keys, issuer: ISSUER, audience: AUDIENCE })
  const verifiers = MODES.map((mode) => ({ mode, v: new FastJwtTokenVerifier(keys,
    { issuer: ISSUER, audience: AUDIENCE, mode, cacheSize: 1000 }) }))

  const cases = [
    ...attacks.access.map((c) => ({ ...c, expected: 'access' as const })),
    ...attacks.refresh.map((c) => ({ ...c, name: `refresh: ${c.name}`, expected: 'refresh' as const })),
    { name: 'control: the real access token', token: access, expected: 'access' as const, code: 'verified' },
    { name: 'control: the real refresh token', token: refresh, expected: 'refresh' as const, code: 'verified' }
  ]
  t.ok(attacks.access.length >= 80, `${attacks.access.length} access cases, ${attacks.refresh.length} refresh cases`)

  const onlyFastJwtRefuses: string[] = []
  const onlyJoseRefuses: string[] = []
  const leftToOurChecks = new Set<string>()
  for (const c of cases) {
    const ours = await code(() => c.expected === 'access' ? service.verifyAccess(c.token) : service.verify(c.token, 'refresh'))
    // The session cases are refused by the session check (token_revoked), after a successful verification.
    const want = c.code === 'token_revoked' ? 'verified' : (c.code ?? 'token_invalid')
    t.equal(ours, want, `${c.name}: TokenService answers ${want}`)
    const jose = await joseAlone(keys, c.token, c.expected)
    for (const { mode, v } of verifiers) {
      // Twice: the second answer may come from fast-jwt's cache and must be the same.
      for (const pass of ['first', 'again']) {
        t.equal(await code(() => v.verify(c.token, c.expected)), ours, `${c.name}: fast-jwt (${mode}) + our checks, ${pass}: ${ours}`)
      }
      const fast = await fastAlone(v, c.token, c.expected)
      if (jose !== 'accepted' && fast === 'accepted') onlyJoseRefuses.push(`${c.name} [${mode}]`)
      if (jose === 'accepted' && fast !== 'accepted') onlyFastJwtRefuses.push(`${c.name} [${mode}]: ${fast}`)
      if (jose === 'accepted' && fast === 'accepted' && ours !== 'verified') leftToOurChecks.add(c.name)
    }
  }
  t.same(onlyJoseRefuses, [], 'library level: fast-jwt alone refuses every case jose alone refuses')
  t.same(onlyFastJwtRefuses, [], 'library level: and accepts the same ones')
  // Accepted by both libraries alone (signature, alg, kid, iss, aud, exp, nbf all fine); our checks after the library refuse them.
  t.same([...leftToOurChecks].sort(), [
    'iat in the future beyond the leeway',
    'missing sid',
    'roles not an array',
    'sid with Redis key characters',
    'sub as a number',
    'sub with Redis key characters',
    'token_type id',
    'validly signed refresh-typed token with the access aud'
  ], 'the cases left to our checks are the same for both libraries')
})

t.test('probes outside the suite', async (t) => {
  const keys = await KeyRing.ephemeral()
  const key = KeyObject.from(keys.signing.privateKey as Parameters<typeof KeyObject.from>[0])
  const kid = keys.signing.kid
  const service = new TokenService(keys, { issuer: ISSUER, audience: AUDIENCE, accessTtl: 900, refreshTtl: 3600, cacheSize: 0 })
  const access = (await service.signAccess({ userId: '1001', username: 'alice', roles: ['user'] }, randomId())).token
  const real = decodePart(access.split('.')[1]!)
  const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => {
    const now = nowSeconds()
    return { ...real, jti: randomId(), iat: now, exp: now + 300, ...over }
  }
  const header = { alg: 'ES256', kid, typ: 'JWT' }
  const fast = new FastJwtTokenVerifier(keys, { issuer: ISSUER, audience: AUDIENCE, mode: 'key-callback', cacheSize: 1000 })
  const both = async (token: string): Promise<{ jose: string, fast: string, ours: string, fastChecked: string }> => ({
    jose: await joseAlone(keys, token, 'access'),
    fast: await fastAlone(fast, token, 'access'),
    ours: await code(() => service.verifyAccess(token)),
    fastChecked: await code(() => fast.verifyAccess(token))
  })

  t.test('same verdict in both libraries', async (t) => {
    const json = JSON.stringify(claims())
    const sig = access.split('.')[2]!
    const sigBytes = Buffer.from(sig, 'base64url')
    // ECDSA malleability: (r, n - s) is a second valid signature of the same token.
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551')
    const s = BigInt('0x' + sigBytes.subarray(32).toString('hex'))
    const highS = Buffer.concat([sigBytes.subarray(0, 32), Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex')]).toString(
      'base64url')
    const probes: Array<[string, string, string]> = [
      // Duplicate members: JSON.parse keeps the last one in both.
      ['duplicate aud, the last one ours', signRaw(key, header, Buffer.from(json.replace(/^\{/, '{"aud":"someone-else",'))), 'verified'],
      ['duplicate aud, the last one foreign', signRaw(key, header, Buffer.from(json.replace(/\}$/, ',"aud":"someone-else"}'))),
        'token_invalid'],
      ['duplicate alg in the header, none then ES256', signRaw(key, `{"alg":"none","kid":"${kid}","alg":"ES256"}`, Buffer.from(json)),
        'verified'],
      ['duplicate alg in the header, ES256 then none', signRaw(key, `{"alg":"ES256","kid":"${kid}","alg":"none"}`, Buffer.from(json)),
        'token_invalid'],
      // b64 without crit is ignored by both (the payload is base64url as usual).
      ['b64 false without crit, validly signed', signEs256(key, { ...header, b64: false }, claims()), 'verified'],
      ['typ other than JWT (neither checks typ)', signEs256(key, { ...header, typ: 'at+jwt' }, claims()), 'verified'],
      ['exp as a float (our schema wants an integer)', signEs256(key, header, claims({ exp: nowSeconds() + 300.5 })), 'token_invalid'],
      ['nbf as a string', signEs256(key, header, claims({ nbf: String(nowSeconds()) })), 'token_invalid'],
      ['empty aud array', signEs256(key, header, claims({ aud: [] })), 'token_invalid'],
      ['aud array holding ours', signEs256(key, header, claims({ aud: ['x', AUDIENCE] })), 'verified'],
      ['iss as an array holding ours', signEs256(key, header, claims({ iss: [ISSUER] })), 'token_invalid'],
      ['high-S twin of a valid signature', `${access.split('.').slice(0, 2).join('.')}.${highS}`, 'verified'],
      ['__proto__ member in the payload', signRaw(key, header, Buffer.from(json.replace(/^\{/, '{"__proto__":{"token_type":"access"},'))),
        'verified']
    ]
    for (const [name, token, want] of probes) {
      const r = await both(token)
      t.equal(r.ours, want, `${name}: TokenService ${want}`)
      t.equal(r.fastChecked, r.ours, `${name}: fast-jwt + our checks the same`)
      t.equal(r.fast === 'accepted', r.jose === 'accepted', `${name}: libraries alone agree (jose ${r.jose}, fast-jwt ${r.fast})`)
    }
  })

  t.test('where the libraries differ', async (t) => {
    const json = JSON.stringify(claims())
    // A UTF-8 byte order mark before the claims: jose's TextDecoder drops it, fast-jwt's JSON.parse fails.
    const bom = await both(signRaw(key, header, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)])))
    t.equal(bom.jose, 'accepted', 'BOM: jose accepts')
    t.match(bom.fast, /^refused/, 'BOM: fast-jwt refuses (stricter)')
    // Invalid UTF-8 inside a string claim: jose's decoder is fatal, fast-jwt's Buffer decoding puts U+FFFD in.
    const badUtf8 = signRaw(key, header, Buffer.from(json.replace('"alice"', '"al\xffice"'), 'latin1'))
    const bad = await both(badUtf8)
    t.match(bad.jose, /^refused/, 'invalid UTF-8: jose refuses')
    t.equal(bad.fast, 'accepted', 'invalid UTF-8: fast-jwt accepts (laxer; needs our signature)')
    t.equal(bad.fastChecked, 'verified', 'invalid UTF-8: and our checks do not catch it')
    t.equal(bad.ours, 'token_invalid')
    // iat: jose wants a number when present; fast-jwt looks at iat only with maxAge. Our schema refuses it after either.
    const iat = await both(signEs256(key, header, claims({ iat: 'yesterday' })))
    t.match(iat.jose, /^refused/, 'iat as a string: jose refuses')
    t.equal(iat.fast, 'accepted', 'iat as a string: fast-jwt alone accepts')
    t.equal(iat.fastChecked, 'token_invalid', 'iat as a string: our checks refuse it')
  })

  t.test('iss and aud are checked only when present unless required', async (t) => {
    // fast-jwt skips allowedIss/allowedAud when the claim is absent; jose requires them once issuer/audience are set.
    const loose = new FastJwtTokenVerifier(keys, { issuer: ISSUER, audience: AUDIENCE, mode: 'key-callback', cacheSize: 0,
      requiredClaims: ['exp'] })
    for (const claim of ['iss', 'aud']) {
      const token = signEs256(key, header, claims({ [claim]: undefined }))
      t.equal(await fastAlone(loose, token, 'access'), 'accepted', `no ${claim}: fast-jwt with requiredClaims ['exp'] accepts`)
      t.match(await fastAlone(fast, token, 'access'), /^refused/, `no ${claim}: refused once ${claim} is in requiredClaims`)
      t.match(await joseAlone(keys, token, 'access'), /^refused/, `no ${claim}: jose refuses`)
    }
  })

  t.test('a key taken out of the ring', async (t) => {
    // Both caches are keyed by the token. With the key callback fast-jwt asks its cache first, so a
    // token verified before the key went keeps being accepted until it leaves the cache (cacheTTL,
    // 10 min, or exp); the @fastify/jwt way looks the key up first and refuses it at once.
    for (const mode of MODES) {
      const v = new FastJwtTokenVerifier(keys, { issuer: ISSUER, audience: AUDIENCE, mode, cacheSize: 1000 })
      const token = signEs256(key, header, claims())
      t.equal(await fastAlone(v, token, 'access'), 'accepted', `${mode}: accepted while the key is in the ring`)
      v.removeKid(kid)
      const after = await fastAlone(v, token, 'access')
      if (mode === 'key-callback') t.equal(after, 'accepted', `${mode}: still accepted from the cache after the key went`)
      else t.match(after, /^refused/, `${mode}: refused once the key went`)
      t.match(await fastAlone(v, signEs256(key, header, claims()), 'access'), /^refused/,
        `${mode}: a new token of the removed key is refused`)
    }
  })
})
