/**
 * The gateway's two in-memory caches of the hot path: verified tokens (keyed by the token's
 * SHA-256) and upstream assertions (kept as flat strings). What they may never do: answer for a
 * token that is not exactly the one verified, or for the wrong token type.
 */
import t from 'tap'
import { GatewayError } from '../../src/errors.js'
import { AssertionCache, flat } from '../../src/proxy/assertion-cache.js'
import { KeyRing } from '../../src/tokens/key-ring.js'
import { TokenService } from '../../src/tokens/token-service.js'

const ring = await KeyRing.ephemeral()
const identity = { userId: '1001', username: 'alice', roles: ['user'] }

async function code (p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'verified'
  } catch (err) {
    return err instanceof GatewayError ? err.code : `threw ${String(err)}`
  }
}

t.test('the verified-token cache answers for exactly the verified token', async (t) => {
  const service = new TokenService(ring, { issuer: 'auth-gateway', audience: 'api', accessTtl: 900, refreshTtl: 3600, cacheSize: 10 })
  const { token } = await service.signAccess(identity, 'sid-1')
  const first = await service.verify(token, 'access')
  t.equal(await service.verify(token, 'access'), first, 'the second check is answered from the cache (same claims object)')
  // The token as a request brings it: sliced from a header, a different string object.
  t.equal(await service.verify(`Bearer ${token}`.slice(7), 'access'), first, 'an equal string hits too')

  const [h, p, s] = token.split('.') as [string, string, string]
  const otherSignature = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`
  t.equal(await code(service.verify(otherSignature, 'access')), 'token_invalid', 'one changed character is a miss, then refused')
  t.equal(await code(service.verify(`${token}.`, 'access')), 'token_invalid', 'a longer token is a miss, then refused')
  t.equal(await code(service.verify(token, 'refresh')), 'token_invalid', 'a cached access token is not a refresh token')
  t.equal(await code(service.verify('x'.repeat(9000), 'access')), 'token_invalid', 'an over-long value is refused before any hashing')
})

t.test('flat() copies a string exactly', async (t) => {
  for (const s of ['', 'a', 'eyJ.' + 'x'.repeat(500) + '.sig', 'é€😀', '\ud800 lone surrogate', 'quote " backslash \\ nul \u0000']) {
    t.equal(flat(s), s)
  }
})

t.test('the assertion cache signs once per key and serves the same assertion while it is fresh', async (t) => {
  const service = new TokenService(ring, { issuer: 'auth-gateway', audience: 'api', accessTtl: 900, refreshTtl: 3600, cacheSize: 0 })
  const cache = new AssertionCache(10)
  let signed = 0
  const sign = (): Promise<string> => { signed++; return service.signAssertion('orders', '1001', { roles: ['user'], username: 'alice' }) }
  const now = 1_000_000
  const a = await cache.get('orders|jti-1|user', now, sign)
  t.equal(await cache.get('orders|jti-1|user', now + 29, sign), a, 'reused for 30 s')
  t.equal(signed, 1)
  t.not(await cache.get('orders|jti-1|user', now + 30, sign), undefined)
  t.equal(signed, 2, 'then signed again')
  await cache.get('orders|jti-1|admin,user', now + 30, sign)
  t.equal(signed, 3, 'other roles, another assertion')
})
