/** Every /admin/* API route counts refused tokens per client IP (429 past PUBLIC_IP_LIMIT), like every route that checks a token. */
import t from 'tap'
import { build } from '../helper.js'

t.test('refused tokens on the admin API are limited per client IP', async (t) => {
  const h = await build(t, { env: { PUBLIC_IP_LIMIT: '2' } })
  for (const path of ['/admin/blocks', '/admin/events', '/admin/clients', '/admin/users/1001/sessions']) {
    // Each path starts from a fresh per-IP window.
    await h.redis.flushAll()
    const first = await h.request('GET', path, { token: 'not.a.token' })
    const second = await h.request('GET', path, { token: 'not.a.token' })
    const third = await h.request('GET', path, { token: 'not.a.token' })
    t.same([first.status, second.status], [401, 401], `${path}: refused`)
    t.equal(third.status, 429, `${path}: limited past PUBLIC_IP_LIMIT`)
    t.equal(third.body.code, 'rate_limited')
  }
})
