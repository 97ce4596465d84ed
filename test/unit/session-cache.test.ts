/**
 * The per-replica session cache (src/sessions/session-cache.ts) by itself, with a tracker that is
 * always trusted: fills, invalidations of a session and of its user's state, the placeholder
 * races, and entries past MAX_AGE_MS dropped at the next reserve.
 */
import t from 'tap'
import { MAX_AGE_MS, SessionCache, type CacheTracker } from '../../src/sessions/session-cache.js'

function cacheWithTracker (): { cache: SessionCache, invalidate: (keys: string[] | null) => void } {
  let invalidate: (keys: string[] | null) => void = () => undefined
  let gen = 1
  const cache = new SessionCache((onInvalidate) => {
    invalidate = (keys) => { if (keys === null) gen++; onInvalidate(keys) }
    const tracker: CacheTracker = {
      data: undefined as unknown as CacheTracker['data'],
      start: () => undefined,
      close: async () => undefined,
      generation: () => gen,
      stillValid: (g) => g === gen,
      settle: async () => undefined,
      trackedNodes: 1
    }
    return tracker
  })
  return { cache, invalidate: (keys) => { invalidate(keys) } }
}

const record = (user: string, session: string): string => `gw:{u:${user}}:s:${session}`
const state = (user: string): string => `gw:{u:${user}}:state`

function cached (cache: SessionCache, user: string, session: string, roles = '["user"]'): void {
  const p = cache.reserve(record(user, session), state(user))
  if (p === undefined) throw new Error('not reserved')
  cache.fill(record(user, session), p, { alive: true, roles, checked: 1 })
}

t.test('a filled answer is served until MAX_AGE_MS', async (t) => {
  const { cache } = cacheWithTracker()
  const key = record('1', 'a')
  const p = cache.reserve(key, state('1'))
  t.ok(p !== undefined, 'reserved')
  t.equal(cache.get(key), undefined, 'a placeholder is no answer')
  cache.fill(key, p!, { alive: true, roles: '["admin"]', checked: 123 })
  const hit = cache.get(key)
  t.same({ alive: hit?.alive, roles: hit?.roles, checked: hit?.checked }, { alive: true, roles: '["admin"]', checked: 123 })
  t.equal(cache.get(key, Date.now() + MAX_AGE_MS), undefined, 'not at MAX_AGE_MS')
  t.equal(cache.size, 1)
})

t.test('a session invalidation drops that session; a state invalidation every session of the user', async (t) => {
  const { cache, invalidate } = cacheWithTracker()
  cached(cache, '1', 'a')
  cached(cache, '1', 'b')
  cached(cache, '2', 'c')
  invalidate([record('1', 'a')])
  t.equal(cache.get(record('1', 'a')), undefined, 'the session dropped')
  t.ok(cache.get(record('1', 'b')) !== undefined, 'the user\'s other session kept')
  invalidate([state('1')])
  t.equal(cache.get(record('1', 'b')), undefined, 'every session of the user dropped')
  t.ok(cache.get(record('2', 'c')) !== undefined, 'another user\'s kept')
  t.equal(cache.size, 1)
  cached(cache, '1', 'd')
  t.ok(cache.get(record('1', 'd')) !== undefined, 'the user is cached again after the invalidation')
  invalidate([state('1')])
  t.equal(cache.get(record('1', 'd')), undefined, 'and dropped again by the next one')
  invalidate(null)
  t.equal(cache.size, 0, 'a flush drops everything')
  t.equal(cache.stats.flushes, 1)
})

t.test('a fill that lost its placeholder is not cached', async (t) => {
  const { cache, invalidate } = cacheWithTracker()
  const key = record('1', 'a')
  const first = cache.reserve(key, state('1'))!
  invalidate([key])
  cache.fill(key, first, { alive: true, roles: '', checked: null })
  t.equal(cache.get(key), undefined, 'invalidated before the answer')

  const older = cache.reserve(key, state('1'))!
  const newer = cache.reserve(key, state('1'))!
  cache.fill(key, older, { alive: false, roles: '', checked: null })
  t.equal(cache.get(key), undefined, 'a replaced placeholder fills nothing')
  cache.fill(key, newer, { alive: true, roles: '', checked: null })
  t.equal(cache.get(key)?.alive, true, 'the latest one fills')
  cache.fill(key, newer, { alive: false, roles: '', checked: null })
  t.equal(cache.get(key)?.alive, true, 'a second fill of the same placeholder changes nothing')

  const userGone = cache.reserve(record('2', 'b'), state('2'))!
  invalidate([state('2')])
  cache.fill(record('2', 'b'), userGone, { alive: true, roles: '', checked: null })
  t.equal(cache.get(record('2', 'b')), undefined, 'a state invalidation drops the user\'s placeholders too')

  const failed = cache.reserve(record('3', 'c'), state('3'))!
  cache.release(record('3', 'c'), failed)
  t.equal(cache.size, 1, 'a released placeholder is gone')

  const lost = cache.reserve(record('4', 'd'), state('4'))!
  invalidate(null)
  cache.fill(record('4', 'd'), lost, { alive: true, roles: '', checked: null })
  t.equal(cache.get(record('4', 'd')), undefined, 'nor after a lost connection')
})

t.test('each fill keeps its own roles', async (t) => {
  const { cache } = cacheWithTracker()
  cached(cache, '1', 'a', '["user"]')
  cached(cache, '1', 'b', '["user"]')
  cached(cache, '1', 'c', '["admin"]')
  t.equal(cache.get(record('1', 'a'))?.roles, '["user"]')
  t.equal(cache.get(record('1', 'b'))?.roles, '["user"]')
  t.equal(cache.get(record('1', 'c'))?.roles, '["admin"]')
})

t.test('answers past MAX_AGE_MS leave the cache at the next reserve', async (t) => {
  const realNow = Date.now
  let now = realNow()
  Date.now = () => now
  t.teardown(() => { Date.now = realNow })
  const { cache, invalidate } = cacheWithTracker()
  for (let i = 0; i < 50; i++) cached(cache, String(i % 5), `old${i}`)
  t.equal(cache.size, 50)
  now += MAX_AGE_MS - 1
  cached(cache, '9', 'young')
  t.equal(cache.size, 51, 'none dropped before MAX_AGE_MS')
  now += 1
  cached(cache, '9', 'new')
  t.equal(cache.size, 2, 'the old ones dropped, the younger kept')
  t.ok(cache.get(record('9', 'young')) !== undefined)
  invalidate([state('0')])
  t.equal(cache.size, 2, 'a dropped user\'s state invalidation finds nothing')
  invalidate([state('9')])
  t.equal(cache.size, 0)
})
