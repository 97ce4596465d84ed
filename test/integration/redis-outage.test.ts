/**
 * While Redis is away (docs/operations.md, "Redis"), everything that needs it answers 503
 * store_unavailable (never a 500, never a hang), /healthz and /readyz stay 200 (so a Redis outage
 * never empties the Service), gateway_redis_up shows the outage, and the JWKS is still served; when
 * Redis is back, service resumes without a restart. Losing Redis data
 * logs users out; it never brings a revoked token back.
 */
import t from 'tap'
import { build } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { redisUp, sample } from '../helpers/metrics.js'

/** A request that must not hang: aborted (and failed) after 5 s, a bound far above the 1 s goal. */
const HANG_GUARD_MS = 5000

t.test('Redis outage and recovery', async (t) => {
  const h = await build(t)
  const alice = await h.login('alice')
  const bob = await h.login('bob')
  t.equal((await h.request('POST', '/auth/logout', { token: bob.access })).status, 204, 'bob logged out before the outage')

  await h.redis.kill()

  const needsRedis: Array<[string, string, Parameters<typeof h.request>[2]]> = [
    ['POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } }],
    ['POST', '/auth/refresh', { body: { refresh: alice.refresh } }],
    ['POST', '/auth/verify', { body: { token: alice.access } }],
    ['GET', '/auth/sessions', { token: alice.access }],
    ['POST', '/auth/logout', { token: alice.access }],
    ['POST', '/auth/logout-all', { token: alice.access }],
    ['GET', '/api/orders', { token: alice.access }],
    ['GET', '/api/users/me', { token: alice.access }],
    ['GET', '/no/such/route', {}]
  ]
  for (const [method, path, opts] of needsRedis) {
    const res = await Promise.race([
      h.request(method, path, opts),
      new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`${method} ${path} hung`)), HANG_GUARD_MS))
    ])
    t.equal(res.status, 503, `${method} ${path} answers 503 while Redis is away`)
    t.equal(res.body.code, 'store_unavailable', `${method} ${path} code`)
    t.match(res.headers.get('content-type'), /application\/problem\+json/)
    t.notMatch(res.text, /stack|ECONNREFUSED|Stream isn't writeable/i, 'no internals leak')
  }

  t.equal((await h.request('GET', '/healthz')).status, 200, '/healthz stays 200')
  const ready = await h.request('GET', '/readyz')
  t.equal(ready.status, 200, '/readyz stays 200: the replica stays in the Service and answers these 503s')
  t.equal(ready.body.status, 'ready')
  t.equal(sample((await h.request('GET', '/metrics')).text, 'gateway_redis_up'), 0, 'gateway_redis_up shows the outage')
  const jwks = await h.request('GET', '/.well-known/jwks.json')
  t.equal(jwks.status, 200, 'the JWKS is still served')
  t.ok(jwks.body.keys.length > 0)

  await h.redis.restart()
  await waitFor(() => redisUp(h.url), 'gateway_redis_up 1 after Redis came back', 10_000)

  // The data is gone: every session with it. Nothing revoked comes back, the users log in again.
  const old = await h.request('GET', '/api/orders', { token: alice.access })
  t.equal(old.status, 401, 'a token whose session was lost is refused')
  t.equal(old.body.code, 'token_revoked')
  const bobOld = await h.request('GET', '/api/orders', { token: bob.access })
  t.equal(bobOld.body.code, 'token_revoked', 'a token revoked before the outage stays revoked')
  const again = await h.login('alice')
  t.equal((await h.request('GET', '/api/orders', { token: again.access })).status, 200, 'service resumed without a restart')
})
