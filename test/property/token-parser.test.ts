/**
 * Property-based tests (fast-check) of the token parser: any string, any byte string, any
 * mutation of a valid token is either verified or refused with the catalogue's token_invalid /
 * token_expired, never throws anything else; a token is accepted only when it is exactly one the
 * service signed. Then over HTTP: arbitrary Authorization values get a documented 401/429, never a 5xx.
 */
import t from 'tap'
import fc from 'fast-check'
import { ERROR_CATALOGUE, GatewayError } from '../../src/errors.js'
import { KeyRing } from '../../src/tokens/key-ring.js'
import { TokenService } from '../../src/tokens/token-service.js'
import { build } from '../helper.js'

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

async function outcome (service: TokenService, token: string, type: 'access' |
  'refresh'): Promise<'verified' | 'token_invalid' | 'token_expired' | string> {
  try {
    await service.verify(token, type)
    return 'verified'
  } catch (err) {
    if (err instanceof GatewayError) return err.code
    return `threw ${String(err)}`
  }
}

t.test('the parser verifies or refuses, never throws', async (t) => {
  const keys = await KeyRing.ephemeral()
  const service = new TokenService(keys, { issuer: 'auth-gateway', audience: 'api', accessTtl: 900, refreshTtl: 3600, cacheSize: 0 })
  const valid = (await service.signAccess({ userId: '1001', username: 'alice', roles: ['user'] }, 'sid-1')).token
  const refused = new Set(['token_invalid', 'token_expired'])

  // Any string, any byte string read as latin1 or UTF-8, and JWS-shaped strings of base64url parts.
  const jwsShaped = fc.array(fc.string({ unit: fc.constantFrom(...B64URL.split('')), maxLength: 200 }), { minLength: 1, maxLength: 5 }).map(
    (p) => p.join('.'))
  const bytes = fc.uint8Array({ maxLength: 600 })
  const arbitrary = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), jwsShaped,
    bytes.map((b) => Buffer.from(b).toString('latin1')), bytes.map((b) => Buffer.from(b).toString('utf8')),
      bytes.map((b) => Buffer.from(b).toString('base64url')))
  await fc.assert(fc.asyncProperty(arbitrary, fc.constantFrom('access' as const, 'refresh' as const), async (token, type) => {
    const result = await outcome(service, token, type)
    return refused.has(result)
  }), { numRuns: 2000 })
  t.pass('arbitrary strings are refused with token_invalid or token_expired')

  // Mutations of a valid token: one character changed, a part dropped or swapped, bytes appended.
  const mutation = fc.oneof(
    fc.tuple(fc.nat({ max: valid.length - 1 }), fc.constantFrom(...B64URL.split(''), '.', '=', '+', '/', ' ', '\0', 'é'))
      .map(([i, c]) => valid.slice(0, i) + c + valid.slice(i + 1)),
    fc.nat({ max: 2 }).map((drop) => valid.split('.').filter((_, i) => i !== drop).join('.')),
    fc.string({ minLength: 1, maxLength: 20 }).map((s) => valid + s),
    fc.string({ minLength: 1, maxLength: 20 }).map((s) => s + valid)
  )
  await fc.assert(fc.asyncProperty(mutation, async (token) => {
    const result = await outcome(service, token, 'access')
    // Changing a base64url character may land on an equivalent encoding of the same bytes only in the
    // last character's unused bits; anything verified must decode to the very same signed token.
    if (result === 'verified') return Buffer.from(token.split('.')[2] ?? '', 'base64url').equals(
      Buffer.from(valid.split('.')[2]!, 'base64url')) && token.split('.').slice(0, 2).join('.') === valid.split('.').slice(0, 2).join('.')
    return refused.has(result)
  }), { numRuns: 1500 })
  t.equal(await outcome(service, valid, 'access'), 'verified', 'control: the valid token itself verifies')
  t.equal(await outcome(service, valid, 'refresh'), 'token_invalid', 'control: an access token is not a refresh token')
})

t.test('over HTTP: any Authorization value gets a documented answer, never a 5xx', async (t) => {
  const h = await build(t, { env: { VERIFY_IP_LIMIT: '100000', API_USER_LIMIT: '100000' } })
  const headerSafe = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 400 })
  const seen = new Map<string, number>()
  await fc.assert(fc.asyncProperty(headerSafe, fc.constantFrom('/auth/verify', '/api/orders', '/auth/sessions'), async (value, path) => {
    const res = await h.request('GET', path, { headers: { authorization: `Bearer ${value}` } })
    const key = `${res.status} ${String(res.body?.code)}`
    seen.set(key, (seen.get(key) ?? 0) + 1)
    // A documented refusal: a 4xx whose code is the catalogue's code for that status.
    const entry = (ERROR_CATALOGUE as Record<string, { status: number }>)[String(res.body?.code)]
    return res.status >= 400 && res.status < 500 && entry?.status === res.status
  }), { numRuns: 300 })
  t.ok(seen.size > 0, `answers: ${[...seen].map(([k, n]) => `${k} x${n}`).join(', ')}`)
})
