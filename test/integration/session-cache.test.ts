/**
 * The session cache and the batched request counters (docs/session-cache.md), seen from outside:
 * Redis commands per request (INFO commandstats), a lost invalidation connection or data
 * connection (every request checks Redis until tracking is back, and a revocation meanwhile
 * holds), a Redis restart, and the per-user limit's overshoot across two replicas staying within
 * its documented bound. With `SESSION_CACHE=off` the same file checks the per-request mode.
 */
import t, { type Test } from 'tap'
import type { Cluster, Redis } from 'ioredis'
import { build, type Harness, type HttpResult } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { waitFor } from '../helpers/redis-server.js'
import { sessionKeys } from '../../src/sessions/session-store.js'
import { unconfirmedAllowance } from '../../src/limits/batched-window-counter.js'
import { clientToken, registerClient } from '../helpers/machine-clients.js'

const cacheOn = process.env.SESSION_CACHE !== 'off'

function inspector (t: Test, h: Harness): Redis | Cluster {
  const redis = h.redis.client()
  t.teardown(() => redis.quit())
  return redis
}

/** Scripts run by Redis so far (every session check and counter batch is one). */
async function scriptCalls (redis: Redis | Cluster): Promise<number> {
  const info = await (redis as Redis).info('commandstats')
  let calls = 0
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1])
  return calls
}

function sidOf (access: string): string {
  return (JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid
}

const refused = (res: HttpResult): boolean => res.status === 401 && (res.body as { code?: string } | null)?.code === 'token_revoked'

async function orders (h: Harness, token: string, n: number): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < n; i++) statuses.push((await h.request('GET', '/api/orders', { token })).status)
  return statuses
}

/** Waits until the replica serves the session from its cache again (tracking back after a loss). */
async function cachedAgain (h: Harness, redis: Redis | Cluster, token: string): Promise<void> {
  await waitFor(async () => {
    await orders(h, token, 1)
    const before = await scriptCalls(redis)
    await orders(h, token, 5)
    return await scriptCalls(redis) - before === 0
  }, 'session served from the cache again')
}

t.test('Redis commands per proxied request: none for a cached session; one per request when off', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, API_USER_LIMIT: '100000', LIMIT_SYNC_MS: '5000' } })
  const redis = inspector(t, h)
  const alice = await h.login('alice')
  await orders(h, alice.access, 2)
  const before = await scriptCalls(redis)
  t.same(new Set(await orders(h, alice.access, 50)), new Set([200]))
  const used = await scriptCalls(redis) - before
  if (cacheOn) t.ok(used <= 2, `50 requests ran ${used} scripts in Redis (at most a counter batch)`)
  else t.ok(used >= 50, `50 requests ran ${used} scripts in Redis (one each)`)
})

t.test('a machine client\'s token: no Redis command once cached; one per request when off', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '100000', LIMIT_SYNC_MS: '5000' } })
  const redis = inspector(t, h)
  const admin = await h.login('admin')
  const token = await clientToken(h.url, await registerClient(h.url, admin.access, ['orders:read'], 'counted job'))
  await orders(h, token, 2)
  const before = await scriptCalls(redis)
  t.same(new Set(await orders(h, token, 30)), new Set([200]))
  const used = await scriptCalls(redis) - before
  if (cacheOn) t.ok(used <= 2, `30 requests ran ${used} scripts in Redis (at most a counter batch)`)
  else t.ok(used >= 30, `30 requests ran ${used} scripts in Redis (one each)`)
})

t.test('a lost invalidation connection: Redis is asked at every request until tracking is back', { skip: !cacheOn && 'the cache is off' },
  async (t) => {
  const h = await build(t, { env: RELAXED_LIMITS })
  const redis = inspector(t, h) as Redis
  const [alice, again] = [await h.login('alice'), await h.login('alice')]
  await cachedAgain(h, redis, alice.access)
  await orders(h, again.access, 2)
  t.ok(Number(await redis.client('KILL', 'TYPE', 'pubsub')) >= 1, 'invalidation connection killed')
  // Gone while the replica has no invalidations: the next request must still see it.
  await redis.del(sessionKeys.record('1001', sidOf(alice.access)))
  t.ok(refused(await h.request('GET', '/api/orders', { token: alice.access })), 'revoked session refused at once')
  await cachedAgain(h, redis, again.access)
  t.pass('tracking is back: the other session is served from the cache again')
  await redis.del(sessionKeys.record('1001', sidOf(again.access)))
  await redis.ping()
  t.ok(refused(await h.request('GET', '/api/orders', { token: again.access })), 'and invalidations arrive again')
})

t.test('a lost data connection: tracking is set up again on the new one', { skip: !cacheOn && 'the cache is off' }, async (t) => {
  const h = await build(t, { env: RELAXED_LIMITS })
  const redis = inspector(t, h) as Redis
  const alice = await h.login('alice')
  await cachedAgain(h, redis, alice.access)
  t.ok(Number(await redis.client('KILL', 'SKIPME', 'yes', 'TYPE', 'normal')) >= 1, 'data connections killed')
  await waitFor(async () => (await h.request('GET', '/api/orders', { token: alice.access })).status === 200, 'served again')
  await cachedAgain(h, redis, alice.access)
  await redis.del(sessionKeys.record('1001', sidOf(alice.access)))
  await redis.ping()
  t.ok(refused(await h.request('GET', '/api/orders', { token: alice.access })), 'a revocation after the reconnect holds at once')
})

t.test('a Redis restart (data lost): cached sessions are refused once Redis answers', async (t) => {
  const h = await build(t, { env: RELAXED_LIMITS })
  const alice = await h.login('alice')
  await orders(h, alice.access, 3)
  await h.redis.restart()
  let last: HttpResult | undefined
  await waitFor(async () => {
    last = await h.request('GET', '/api/orders', { token: alice.access })
    if (last.status === 200) throw new Error('a session lost with Redis was accepted')
    return last.status !== 503
  }, 'an answer other than 503')
  t.ok(last !== undefined && refused(last), 'token_revoked')
})

t.test('the per-user limit across two replicas: never below it, at most (replicas + 1) x floor(limit / 100) above', async (t) => {
  const limit = 300
  const env = { ...RELAXED_LIMITS, API_USER_LIMIT: String(limit), LIMIT_SYNC_MS: '50' }
  const a = await build(t, { env })
  const b = await build(t, { env, redis: a.redis, keyRing: a.keyRing })
  const alice = await a.login('alice')
  let allowed = 0
  let limited = 0
  // Both replicas in parallel, several requests in flight on each, until both refuse.
  await Promise.all([a, b].map(async (h) => {
    let refusedInARow = 0
    while (refusedInARow < 20) {
      const batch = await Promise.all(Array.from(
        { length: 4 },
        async () => (await h.request('GET', '/api/orders', { token: alice.access })).status
      ))
      for (const s of batch) {
        if (s === 200) {
          allowed++; refusedInARow = 0
        } else if (s === 429) {
          limited++; refusedInARow++
        } else throw new Error(`status ${s}`)
      }
    }
  }))
  const bound = cacheOn ? 3 * unconfirmedAllowance(limit) : 0
  t.ok(allowed >= limit, `${allowed} allowed: not below the limit ${limit}`)
  t.ok(allowed <= limit + bound, `${allowed} allowed: at most ${bound} above the limit`)
  t.ok(limited >= 40, 'then refused on both replicas')
})
