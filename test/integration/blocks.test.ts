/**
 * Credential stuffing and blocks (docs/abuse-protection.md, docs/audit-and-dashboard.md): one IP failing logins for
 * STUFFING_USERNAMES distinct usernames within 10 minutes is refused at login for
 * IP_BLOCK_SECONDS (429 ip_blocked, Retry-After), shared by the replicas and atomic; admins list
 * lockouts and IP blocks (with the username of a lockout, never a password) and lift them.
 */
import t from 'tap'
import { build } from '../helper.js'
import { header, loginCall } from '../helpers/abuse.js'
import { waitFor } from '../helpers/redis-server.js'

t.test('defaults', async (t) => {
  const h = await build(t)
  t.equal(h.config.audit.stuffingUsernames, 10)
  t.equal(h.config.audit.ipBlockSeconds, 3600)
  t.equal(h.config.audit.retentionDays, 7)
})

t.test('distinct usernames failing from one IP block it at login, for every username; other IPs are untouched', async (t) => {
  const h = await build(t, { env: { STUFFING_USERNAMES: '4', IP_BLOCK_SECONDS: '120' } })
  const admin = await h.login('admin')
  // The same username over and over is the lockout's business, not stuffing.
  for (let i = 0; i < 4; i++) t.equal((await loginCall(h.url, 'alice', 'wrong', { from: '127.0.0.2' })).status, 401)
  t.equal((await loginCall(h.url, 'bob', 'bob-password', { from: '127.0.0.2' })).status, 200, 'one username failing 4 times blocks no IP')

  for (const name of ['u1', 'u2', 'u3']) t.equal((await loginCall(h.url, name, 'pw', { from: '127.0.0.3' })).status, 401)
  t.equal((await loginCall(h.url, 'bob', 'bob-password', { from: '127.0.0.3' })).status, 200, '3 distinct usernames: not yet')
  t.equal((await loginCall(h.url, 'U1 ', 'pw', { from: '127.0.0.3' })).status, 401, 'another spelling of u1 is no new username')
  t.equal((await loginCall(h.url, 'u4', 'pw', { from: '127.0.0.3' })).status, 401, 'the 4th distinct username still gets its answer')

  const blocked = await loginCall(h.url, 'bob', 'bob-password', { from: '127.0.0.3' })
  t.equal(blocked.status, 429, 'the right password of another user is refused')
  t.equal(blocked.body.code, 'ip_blocked')
  t.match(header(blocked, 'content-type'), /^application\/problem\+json/)
  const retryAfter = Number(header(blocked, 'retry-after'))
  t.ok(retryAfter > 0 && retryAfter <= 120, `Retry-After ${retryAfter} within IP_BLOCK_SECONDS`)
  t.notOk('access' in blocked.body, 'no tokens')
  t.equal((await loginCall(h.url, 'bob', 'bob-password', { from: '127.0.0.4' })).status, 200, 'another IP logs in')

  const { blocks } = (await h.request('GET', '/admin/blocks', { token: admin.access })).body
  const ipBlock = blocks.find((b: any) => b.kind === 'ip')
  t.match(ipBlock, { kind: 'ip', ip: '127.0.0.3', failures: 4 })
  t.ok(Date.parse(ipBlock.until) > Date.now() + 100_000, 'until about IP_BLOCK_SECONDS from now')
  await waitFor(async () => (await h.request('GET', '/admin/events?event=ip_blocked&ip=127.0.0.3',
    { token: admin.access })).body.events.length >= 2, 'ip_blocked events')
  const keys = [...await h.redis.keys('gw:stuffing:*'), ...await h.redis.keys('gw:ipblock:*'), ...await h.redis.keys('gw:lockout:*')]
  t.ok(keys.length >= 2, 'the block and the lockout counters')
  t.notOk(keys.some((k) => k.includes('127.0.0') || k.includes('alice')), 'no IP or username in their key names')

  t.equal((await h.request('DELETE', `/admin/blocks/${ipBlock.id}`, { token: admin.access })).status, 204, 'the admin lifts the block')
  t.equal((await loginCall(h.url, 'bob', 'bob-password', { from: '127.0.0.3' })).status, 200, 'the IP logs in again')
  t.equal((await h.request('DELETE', `/admin/blocks/${ipBlock.id}`, { token: admin.access })).status, 404, 'lifting twice: 404')
  t.equal((await h.request('DELETE', '/admin/blocks/nonsense', { token: admin.access })).status, 404)
  t.equal((await loginCall(h.url, 'u9', 'pw', { from: '127.0.0.3' })).status, 401, 'counting starts again from zero')
  t.equal((await loginCall(h.url, 'bob', 'bob-password', { from: '127.0.0.3' })).status, 200)
})

t.test('replicas share the count, and parallel failures block exactly once', async (t) => {
  // Parallel password checks on a busy machine: a generous upstream timeout.
  const env = { STUFFING_USERNAMES: '3', UPSTREAM_TIMEOUT_MS: '60000' }
  const one = await build(t, { env })
  const two = await build(t, { redis: one.redis, keyRing: one.keyRing, env })
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) =>
    loginCall(i % 2 === 0 ? one.url : two.url, `name${i}`, 'pw', { from: '127.0.0.6' })))
  const statuses = answers.map((r) => r.status)
  t.ok(statuses.every((s) => s === 401 || s === 429), statuses.join(',')
    + answers.filter((r) => r.status >= 500).map((r) => r.text).join(' '))
  t.ok(statuses.filter((s) => s === 401).length >= 3, 'at least the threshold were checked')
  for (const url of [one.url, two.url]) {
    const res = await loginCall(url, 'alice', 'alice-password', { from: '127.0.0.6' })
    t.equal(res.status, 429, 'blocked on both replicas')
    t.equal(res.body.code, 'ip_blocked')
  }
  const admin = await one.login('admin')
  const listed = await two.request('GET', '/admin/blocks', { token: admin.access })
  t.equal(listed.status, 200, listed.text)
  const { blocks } = listed.body
  t.equal(blocks.filter((b: any) => b.kind === 'ip').length, 1, 'one IP block')
  await waitFor(async () => (await one.request('GET', '/admin/events?event=ip_blocked', { token: admin.access })).body.events.length >= 2,
    'events')
  const created = (await one.request('GET', '/admin/events?event=ip_blocked', { token: admin.access })).body.events.filter((e: any) =>
    e.block_id !== undefined)
  t.equal(created.length, 1, 'the block was created once')
})

t.test('lockouts are listed with their username (never a password) and lifted by an admin', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  for (let i = 0; i < 5; i++) t.equal((await loginCall(h.url, ' Alice', `Guess-${i}-pw`)).status, 401)
  t.equal((await loginCall(h.url, 'alice', 'alice-password')).status, 429, 'alice is locked on this IP')

  const res = await h.request('GET', '/admin/blocks', { token: admin.access })
  t.equal(res.status, 200)
  const lock = res.body.blocks.find((b: any) => b.kind === 'account')
  t.match(lock, { kind: 'account', username: 'alice', ip: '127.0.0.1', failures: 5 })
  t.match(lock.id, /^account\./)
  let event: unknown
  await waitFor(async () => {
    event = (await h.request('GET', '/admin/events?event=account_locked', { token: admin.access })).body.events.find((e: any) =>
      e.block_id === lock.id)
    return event !== undefined
  }, 'the account_locked event names the block')
  t.match(event, { event: 'account_locked', block_id: lock.id, ip: '127.0.0.1' }, 'the account_locked event names the block')

  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  const dump: string[] = []
  for (const key of await h.redis.keys('*')) {
    const type = await redis.type(key)
    dump.push(type === 'string' ? String(await redis.get(key)) : type === 'hash' ? JSON.stringify(await redis.hgetall(key))
      : type === 'stream' ? JSON.stringify(await redis.xrange(key, '-', '+')) : type === 'zset'
        ? JSON.stringify(await redis.zrange(key, 0, -1)) : '')
  }
  t.ok(dump.some((v) => v.includes(lock.id)), 'the dump holds the block list (the check below reads real data)')
  t.notOk(dump.join('\n').includes('Guess-'), 'no password anywhere in Redis')

  t.equal((await h.request('DELETE', `/admin/blocks/${lock.id}`, { token: admin.access })).status, 204)
  t.equal((await loginCall(h.url, 'alice', 'alice-password')).status, 200, 'alice logs in again')
  const after = (await h.request('GET', '/admin/blocks', { token: admin.access })).body.blocks
  t.notOk(after.some((b: any) => b.id === lock.id), 'the block is gone from the list')
  await waitFor(async () => (await h.request('GET', '/admin/events?event=block_lifted', { token: admin.access })).body.events.some(
    (e: any) => e.block_id === lock.id), 'block_lifted event')
})

t.test('an admin lists a user\'s sessions and revokes one: its token stops working at once', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const first = await h.login('alice')
  const second = await h.login('alice')
  const res = await h.request('GET', '/admin/users/1001/sessions', { token: admin.access })
  t.equal(res.status, 200)
  t.match(res.body.user, { id: '1001', username: 'alice', active: true })
  t.equal(res.body.sessions.length, 2)
  const firstSid = JSON.parse(Buffer.from(first.access.split('.')[1]!, 'base64url').toString()).sid
  t.equal((await h.request('DELETE', `/admin/users/1001/sessions/${firstSid}`, { token: admin.access })).status, 204)
  t.equal((await h.request('GET', '/api/orders', { token: first.access })).status, 401, 'the revoked session\'s next request is 401')
  t.equal((await h.request('GET', '/api/orders', { token: second.access })).status, 200, 'the other session lives')
  t.equal((await h.request('DELETE', `/admin/users/1001/sessions/${firstSid}`, { token: admin.access })).status, 404)
  t.equal((await h.request('GET', '/admin/users/9999/sessions', { token: admin.access })).status, 404, 'unknown user')
})
