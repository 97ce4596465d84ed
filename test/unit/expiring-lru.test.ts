/** The LRU of verified tokens: bounded, least recently used out first, expired entries never returned. */
import t from 'tap'
import { ExpiringLru } from '../../src/lib/expiring-lru.js'

const NOW = 1_000_000
const live = (n: number): { exp: number, n: number } => ({ exp: NOW + 100, n })

t.test('stores and returns claims', async (t) => {
  const cache = new ExpiringLru<{ exp: number, n: number }>(3)
  t.equal(cache.get('a', NOW), undefined, 'a miss')
  cache.set('a', live(1))
  t.same(cache.get('a', NOW), live(1))
  t.equal(cache.size, 1)
  cache.set('a', live(2))
  t.same(cache.get('a', NOW), live(2), 'set again replaces')
  t.equal(cache.size, 1, 'without a second entry')
})

t.test('bounded size', async (t) => {
  const cache = new ExpiringLru<{ exp: number, n: number }>(100)
  for (let i = 0; i < 1000; i++) {
    cache.set(`token-${i}`, live(i))
    t.ok(cache.size <= 100)
  }
  t.equal(cache.size, 100)
  t.equal(cache.get('token-0', NOW), undefined, 'the oldest went')
  t.equal(cache.get('token-899', NOW), undefined)
  t.same(cache.get('token-900', NOW), live(900), 'the newest 100 stay')
  t.same(cache.get('token-999', NOW), live(999))
})

t.test('evicts the least recently used', async (t) => {
  const cache = new ExpiringLru<{ exp: number, n: number }>(3)
  cache.set('a', live(1))
  cache.set('b', live(2))
  cache.set('c', live(3))
  t.ok(cache.get('a', NOW), 'reading a makes it recent')
  cache.set('d', live(4))
  t.equal(cache.get('b', NOW), undefined, 'b was the least recently used')
  t.ok(cache.get('a', NOW))
  t.ok(cache.get('c', NOW))
  t.ok(cache.get('d', NOW))
  // Order of use now: a, c, d. Re-setting a makes it recent too.
  cache.set('a', live(5))
  cache.set('e', live(6))
  t.equal(cache.get('c', NOW), undefined, 'c was the least recently used')
  t.same(cache.get('a', NOW), live(5))
  t.equal(cache.size, 3)
})

t.test('expired entries are not returned, and go', async (t) => {
  const cache = new ExpiringLru<{ exp: number }>(10)
  cache.set('short', { exp: NOW + 5 })
  cache.set('long', { exp: NOW + 500 })
  t.ok(cache.get('short', NOW + 4), 'live one second before exp')
  t.equal(cache.get('short', NOW + 5), undefined, 'not at exp')
  t.equal(cache.get('short', NOW), undefined, 'and gone for good once seen expired')
  t.equal(cache.size, 1)
  t.equal(cache.get('long', NOW + 501), undefined)
  t.equal(cache.size, 0)
  cache.set('past', { exp: NOW - 1 })
  t.equal(cache.get('past', NOW), undefined, 'an entry stored already expired is never returned')
})

t.test('maxEntries 0 stores nothing', async (t) => {
  const cache = new ExpiringLru<{ exp: number }>(0)
  cache.set('a', { exp: NOW + 100 })
  t.equal(cache.size, 0)
  t.equal(cache.get('a', NOW), undefined)
})

t.test('maxEntries 1 keeps only the last', async (t) => {
  const cache = new ExpiringLru<{ exp: number, n: number }>(1)
  cache.set('a', live(1))
  cache.set('b', live(2))
  t.equal(cache.size, 1)
  t.equal(cache.get('a', NOW), undefined)
  t.same(cache.get('b', NOW), live(2))
})
