/** The upstream side's assertion verifier: each distinct assertion verified once, bounded, never past its expiry. */
import t from 'tap'
import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose'
import { AssertionVerifier } from '../../services/shared/assertion-verifier.js'
import { KeyRing } from '../../src/tokens/key-ring.js'
import { TokenService } from '../../src/tokens/token-service.js'

const ring = await KeyRing.ephemeral()
const tokens = new TokenService(ring, { issuer: 'auth-gateway', audience: 'api', accessTtl: 900, refreshTtl: 3600, cacheSize: 0 })
const other = new TokenService(await KeyRing.ephemeral(),
  { issuer: 'auth-gateway', audience: 'api', accessTtl: 900, refreshTtl: 3600, cacheSize: 0 })

/** The gateway's public keys, counting how many signature verifications asked for a key. */
function countingKeys (): { keys: JWTVerifyGetKey, lookups: () => number } {
  const local = createLocalJWKSet(ring.publicJwks)
  let n = 0
  return { keys: async (header, token) => { n++; return local(header, token) }, lookups: () => n }
}

t.test('verifies a distinct assertion once and answers repeats from the cache', async (t) => {
  const { keys, lookups } = countingKeys()
  const verifier = new AssertionVerifier({ audience: 'orders', issuer: 'auth-gateway', keys })
  const assertion = await tokens.signAssertion('orders', '1001', { roles: ['user'], username: 'alice' })
  for (let i = 0; i < 5; i++) {
    const claims = await verifier.verify(assertion)
    t.equal(claims.sub, '1001')
    t.same(claims.roles, ['user'])
  }
  t.equal(lookups(), 1, 'one signature verification for five requests')
  await verifier.verify(await tokens.signAssertion('orders', '1002', {}))
  t.equal(lookups(), 2, 'another assertion is verified')
})

t.test('refuses what the gateway did not sign for this service, and caches no refusal', async (t) => {
  const { keys, lookups } = countingKeys()
  const verifier = new AssertionVerifier({ audience: 'orders', issuer: 'auth-gateway', keys })
  const good = await tokens.signAssertion('orders', '1001', {})
  await verifier.verify(good)
  const [h, p, s] = good.split('.') as [string, string, string]
  const tampered = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`
  await t.rejects(verifier.verify(tampered), 'a tampered signature of a cached assertion')
  await t.rejects(verifier.verify(await tokens.signAssertion('users', '1001', {})), 'another audience')
  await t.rejects(verifier.verify(await other.signAssertion('orders', '1001', {})), 'another key')
  await t.rejects(verifier.verify('not.a.jwt'), 'garbage')
  await t.rejects(verifier.verify(await tokens.signAssertion('users', '1001', {})), 'a refusal is not cached: refused again')
  t.equal(verifier.size, 1, 'only the good assertion is held')
  t.ok(lookups() >= 2)
})

t.test('memory stays bounded', async (t) => {
  const { keys, lookups } = countingKeys()
  const verifier = new AssertionVerifier({ audience: 'orders', issuer: 'auth-gateway', keys, maxEntries: 3 })
  const assertions = await Promise.all([1, 2, 3, 4, 5].map((n) => tokens.signAssertion('orders', String(n), {})))
  for (const a of assertions) await verifier.verify(a)
  t.equal(verifier.size, 3)
  const before = lookups()
  await verifier.verify(assertions[4]!)
  t.equal(lookups(), before, 'a recent one is still cached')
  await verifier.verify(assertions[0]!)
  t.equal(lookups(), before + 1, 'the oldest was evicted and is verified again')
})

t.test('maxEntries 0 verifies every time', async (t) => {
  const { keys, lookups } = countingKeys()
  const verifier = new AssertionVerifier({ audience: 'orders', issuer: 'auth-gateway', keys, maxEntries: 0 })
  const assertion = await tokens.signAssertion('orders', '1001', {})
  await verifier.verify(assertion)
  await verifier.verify(assertion)
  t.equal(lookups(), 2)
  t.equal(verifier.size, 0)
})

t.test('a cached assertion is refused once it expires', async (t) => {
  const { keys } = countingKeys()
  const verifier = new AssertionVerifier({ audience: 'orders', issuer: 'auth-gateway', keys })
  const shortLived = await tokens.signAssertion('orders', '1001', {}, 1)
  await verifier.verify(shortLived)
  // Poll until the expiry passes: the cache must not keep answering for it.
  const deadline = Date.now() + 10_000
  let refused = false
  while (!refused && Date.now() < deadline) {
    refused = await verifier.verify(shortLived).then(() => false, () => true)
    if (!refused) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(refused, 'refused after exp')
  t.equal(verifier.size, 0, 'and dropped from the cache')
})

t.test('a bound assertion (forward authentication) holds only for its own method and path', async (t) => {
  const { keys } = countingKeys()
  const verifier = new AssertionVerifier({ audience: 'orders', issuer: 'auth-gateway', keys })
  const bound = await tokens.signAssertion('orders', '1001', { roles: ['user'], method: 'GET', path: '/api/orders/7' })
  t.equal((await verifier.verify(bound, { method: 'GET', url: '/api/orders/7?x=1' })).sub, '1001', 'its own request, query aside')
  t.equal((await verifier.verify(bound, { method: 'GET', url: '/api/orders/./7' })).sub, '1001', 'the same path in another spelling')
  await t.rejects(verifier.verify(bound, { method: 'POST', url: '/api/orders/7' }), /another method/, 'another method, from the cache too')
  await t.rejects(verifier.verify(bound, { method: 'GET', url: '/api/orders/8' }), /another path/, 'another path')
  await t.rejects(verifier.verify(bound, { method: 'GET', url: '/api/orders/7/../8' }), /another path/, 'dot segments resolved first')
  await t.rejects(verifier.verify(bound, { method: 'GET', url: '/api/orders%2f7' }), /another path/, 'a path the gateway refuses')
  await t.rejects(verifier.verify(bound), /no request/, 'no request to compare')
  const unbound = await tokens.signAssertion('orders', '1001', { roles: ['user'] })
  t.equal((await verifier.verify(unbound, { method: 'DELETE', url: '/anything' })).sub, '1001', 'the own proxy\'s assertions are not bound')
})
