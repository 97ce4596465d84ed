/**
 * The audit trail (docs/audit-and-dashboard.md): every security event lands in one Redis Stream shared by
 * the replicas, without a token or password; admins read it with filters and a stable cursor and
 * follow it as Server-Sent Events; non-admins get 403, malformed input 400, Redis away 503.
 */
import t from 'tap'
import { build, type Harness } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { loginCall } from '../helpers/abuse.js'
import { openSse } from '../helpers/sse.js'
import { AUDIT_STREAM, minIdFor } from '../../src/audit/audit-log.js'

/** Polls GET /admin/events until an event matches (appending is fire-and-forget). */
async function eventually (h: Harness, token: string, query: string, match: (e: any) => boolean, what: string): Promise<any> {
  let found: any
  await waitFor(async () => {
    const res = await h.request('GET', `/admin/events?${query}`, { token })
    found = (res.body.events as any[] | undefined)?.find(match)
    return found !== undefined
  }, what)
  return found
}

t.test('every security event is in the trail, with id, time, event, ip, request_id and never a secret', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const failed = await loginCall(h.url, 'alice', 'wrong-Secret-123')
  t.equal(failed.status, 401)
  const alice = await h.login('alice')

  const e = await eventually(h, admin.access, 'event=login_failed', () => true, 'login_failed in the trail')
  t.match(e, { event: 'login_failed', ip: '127.0.0.1', attempt: 1 })
  t.match(e.id, /^\d+-\d+$/)
  t.ok(Math.abs(Date.parse(e.time) - Date.now()) < 60_000, 'time is now')
  t.equal(e.request_id, failed.headers['x-request-id'], 'request_id is the answer\'s X-Request-Id')
  const ok = await eventually(h, admin.access, 'event=login_succeeded&user_id=1001', () => true, 'login_succeeded of alice')
  t.equal(ok.user_id, '1001')

  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  const raw = JSON.stringify(await redis.xrange(AUDIT_STREAM, '-', '+'))
  for (const secret of ['wrong-Secret-123', 'alice-password', 'admin-password', alice.access, alice.refresh, admin.access, admin.refresh]) {
    t.notOk(raw.includes(secret), 'no password or token in the stream')
  }
  const ttl = await redis.ttl(AUDIT_STREAM)
  t.ok(ttl > 7 * 86_400 - 60 && ttl <= 7 * 86_400,
    `the stream expires AUDIT_RETENTION_DAYS (default 7) after its last event (TTL ${ttl} s)`)
})

t.test('every event pushes the stream\'s expiry to AUDIT_RETENTION_DAYS after it', async (t) => {
  const h = await build(t, { env: { AUDIT_RETENTION_DAYS: '2' } })
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  t.equal((await loginCall(h.url, 'alice', 'wrong-Secret-1')).status, 401)
  await waitFor(async () => await redis.exists(AUDIT_STREAM) === 1, 'the first event in the stream')
  const first = await redis.ttl(AUDIT_STREAM)
  t.ok(first > 2 * 86_400 - 60 && first <= 2 * 86_400, `TTL of two days after the first event (${first} s)`)

  // As if the last event were almost two days old: the next one must bring the expiry back.
  await redis.expire(AUDIT_STREAM, 100)
  t.equal((await loginCall(h.url, 'alice', 'wrong-Secret-2')).status, 401)
  await waitFor(async () => await redis.ttl(AUDIT_STREAM) > 100, 'the TTL refreshed by the next event')
  const refreshed = await redis.ttl(AUDIT_STREAM)
  t.ok(refreshed > 2 * 86_400 - 60 && refreshed <= 2 * 86_400, `TTL of two days again (${refreshed} s)`)
  t.equal(await redis.xlen(AUDIT_STREAM), 2, 'both events kept (the expiry never cut the trail short)')
})

t.test('admin only: 401 without a token, 403 for a non-admin on every admin API', async (t) => {
  const h = await build(t)
  const alice = await h.login('alice')
  const paths: Array<[string, string]> = [
    ['GET', '/admin/events'], ['GET', '/admin/events/counts'], ['GET', '/admin/events/stream'],
    ['GET', '/admin/blocks'], ['DELETE', '/admin/blocks/ip.AAAAAAAAAAAAAAAAAAAAAA'],
    ['GET', '/admin/users/1002/sessions'], ['DELETE', '/admin/users/1002/sessions/abc']
  ]
  for (const [method, path] of paths) {
    const anonymous = await h.request(method, path)
    t.equal(anonymous.status, 401, `${method} ${path} without a token`)
    t.equal(anonymous.body.code, 'token_missing')
    const res = await h.request(method, path, { token: alice.access })
    t.equal(res.status, 403, `${method} ${path} as a non-admin`)
    t.equal(res.body.code, 'forbidden')
    t.match(res.headers.get('content-type'), /^application\/problem\+json/)
  }
  const doc = (await h.request('GET', '/docs/json')).body as { paths: Record<string, Record<string, unknown>> }
  for (const [path, method] of [['/admin/events', 'get'], ['/admin/events/counts', 'get'], ['/admin/events/stream', 'get'],
    ['/admin/blocks', 'get'], ['/admin/blocks/{id}', 'delete'], ['/admin/users/{userId}/sessions', 'get']] as const) {
    t.ok(doc.paths[path]?.[method] !== undefined, `the OpenAPI document lists ${method.toUpperCase()} ${path}`)
  }
})

t.test('malformed filters and cursors are 400 problem+json', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const bad = ['limit=1001', 'limit=0', 'limit=ten', 'cursor=abc', 'cursor=1-2-3', 'since=yesterday', 'until=2026-13-45T99:00:00Z',
    'since=2026-01-01', 'ip=not-an-ip', 'event=Login%20Failed', 'user_id=', 'colour=blue']
  for (const query of bad) {
    const res = await h.request('GET', `/admin/events?${query}`, { token: admin.access })
    t.equal(res.status, 400, query)
    t.equal(res.body.code, 'invalid_request', `${query}: invalid_request`)
    t.match(res.headers.get('content-type'), /^application\/problem\+json/)
  }
  const good = await h.request('GET', '/admin/events?limit=1000&since=2026-01-01T00:00:00Z&until=2099-01-01T00:00:00.000%2B02:00&ip=::1',
    { token: admin.access })
  t.equal(good.status, 200, 'well-formed filters')
})

t.test('filters, newest first, and a stable cursor while events keep coming', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  for (let i = 0; i < 7; i++) t.equal((await loginCall(h.url, `user${i}`, 'x', { from: i % 2 === 0 ? '127.0.0.2' : '127.0.0.3' })).status,
    401)
  const alice = await h.login('alice')
  await waitFor(async () => (await h.request('GET', '/admin/events?event=login_failed', { token: admin.access })).body.events.length === 7,
    '7 failures')

  const all = (await h.request('GET', '/admin/events?event=login_failed', { token: admin.access })).body.events as any[]
  const ids = all.map((e) => e.id)
  t.same([...ids].sort(compareIds).reverse(), ids, 'newest first')

  const paged: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res: any = await h.request('GET', `/admin/events?event=login_failed&limit=3${cursor !== null ? `&cursor=${cursor}` : ''}`,
      { token: admin.access })
    t.equal(res.status, 200)
    t.ok(res.body.events.length <= 3, 'limit holds')
    paged.push(...res.body.events.map((e: any) => e.id))
    cursor = res.body.next_cursor
    // New events between pages must not shift the pages.
    await loginCall(h.url, `late${pages}`, 'x')
    pages++
  } while (cursor !== null && pages < 10)
  t.same(paged, ids, 'the pages give every event once, in order, though new ones arrived meanwhile')

  const fromTwo = (await h.request('GET', '/admin/events?event=login_failed&ip=127.0.0.2', { token: admin.access })).body.events as any[]
  t.equal(fromTwo.length, 4, 'ip filter')
  t.ok(fromTwo.every((e) => e.ip === '127.0.0.2'))
  const byUser = await eventually(h, admin.access, `user_id=${alice.user.id}`, () => true, "alice's login")
  const aliceEvents = (await h.request('GET', `/admin/events?user_id=${alice.user.id}`, { token: admin.access })).body.events as any[]
  t.same(aliceEvents.map((e) => e.event), ['login_succeeded'], 'user filter: only alice\'s one event')
  t.equal(byUser.user_id, alice.user.id)
  const both = (await h.request('GET', `/admin/events?user_id=${alice.user.id}&event=login_failed`,
    { token: admin.access })).body.events as any[]
  t.equal(both.length, 0, 'filters combine')
  const future = (await h.request('GET', `/admin/events?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
    { token: admin.access })).body
  t.same(future, { events: [], next_cursor: null }, 'since in the future: nothing')
  const past = (await h.request('GET', '/admin/events?until=2001-01-01T00:00:00Z', { token: admin.access })).body
  t.same(past.events, [], 'until long ago: nothing')

  const counts = (await h.request('GET', '/admin/events/counts', { token: admin.access })).body
  t.ok(counts.hour.login_failed >= 7, `counts over the last hour (${counts.hour.login_failed})`)
  t.ok(counts.day.login_failed >= counts.hour.login_failed, 'the day holds the hour')
})

function compareIds (a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint]
  return am === bm ? Number(as - bs) : Number(am - bm)
}

t.test('retention: XADD MINID drops what is older than AUDIT_RETENTION_DAYS', async (t) => {
  const h = await build(t, { env: { AUDIT_RETENTION_DAYS: '2' } })
  t.equal(h.config.audit.retentionDays, 2)
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  const day = 86_400_000
  const now = Date.now()
  // Entries written days ago (explicit ids carry their time), as the stream would hold them.
  for (const age of [5 * day, 3 * day, 2 * day + 60_000]) await redis.xadd(AUDIT_STREAM, `${now - age}-0`, 'd',
    JSON.stringify({ event: 'old', ip: '127.0.0.1', request_id: 'r' }))
  const kept = `${now - 2 * day + 3_600_000}-0`
  await redis.xadd(AUDIT_STREAM, kept, 'd', JSON.stringify({ event: 'recent', ip: '127.0.0.1', request_id: 'r' }))
  t.equal(await redis.xlen(AUDIT_STREAM), 4)

  t.equal((await loginCall(h.url, 'alice', 'wrong')).status, 401, 'a new event is appended')
  await waitFor(async () => (await redis.xlen(AUDIT_STREAM)) === 2, 'the old entries to be trimmed')
  const left = await redis.xrange(AUDIT_STREAM, '-', '+')
  t.equal(left[0]![0], kept, 'the entry inside the retention is kept')
  t.match(left[1]![1][1], /login_failed/)
  t.equal(minIdFor(now, 2), String(now - 2 * day), 'MINID is now minus the retention')
})

t.test('SSE: a new event reaches every open feed; heartbeat headers; a disconnect costs nothing', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const a = await openSse(h.url, '/admin/events/stream', admin.access)
  const b = await openSse(h.url, '/admin/events/stream', admin.access)
  t.teardown(() => { a.close(); b.close() })
  t.equal(a.status, 200)
  t.match(a.headers['content-type'], /^text\/event-stream/)
  t.equal(a.headers['x-accel-buffering'], 'no', 'proxies must not buffer')
  t.equal(a.headers['cache-control'], 'no-store')
  t.ok(a.headers['content-security-policy'], 'the security headers are kept')
  await a.next((m) => m.comment === 'connected', 'the opening comment')
  await waitFor(() => h.gateway.auditFeed.listeners === 2, 'two listeners on one reader')

  t.equal((await loginCall(h.url, 'bob', 'wrong', { from: '127.0.0.5' })).status, 401)
  for (const conn of [a, b]) {
    const m = await conn.next((m) => m.data?.includes('"login_failed"') === true, 'the failed login on the feed')
    const e = JSON.parse(m.data!)
    t.match(e, { event: 'login_failed', ip: '127.0.0.5' })
    t.equal(m.id, e.id, 'the SSE id is the stream id')
  }
  a.close()
  b.close()
  await waitFor(() => h.gateway.auditFeed.listeners === 0, 'closed feeds are forgotten')
})

t.test('an open stream ends at the next heartbeat once the admin\'s session is revoked', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const other = await h.login('admin')
  const feed = await openSse(h.url, '/admin/events/stream', admin.access)
  t.teardown(() => feed.close())
  await feed.next((m) => m.comment === 'connected', 'feed open')
  h.gateway.auditFeed.beat()
  await feed.next((m) => m.comment === 'heartbeat', 'a heartbeat while the session lives')
  t.notOk(feed.ended)
  t.equal((await h.request('POST', '/auth/logout', { token: admin.access })).status, 204, 'the admin logs out')
  h.gateway.auditFeed.beat()
  await waitFor(() => feed.ended, 'the stream of the revoked session to end')
  t.pass('ended')
  const still = await openSse(h.url, '/admin/events/stream', other.access)
  t.teardown(() => still.close())
  t.equal(still.status, 200, 'another live admin session streams on')
})

t.test('two replicas share the trail: an event on one is on the other\'s feed and list', async (t) => {
  const one = await build(t)
  const two = await build(t, { redis: one.redis })
  const admin = await two.login('admin')
  const feed = await openSse(two.url, '/admin/events/stream', admin.access)
  t.teardown(() => feed.close())
  await feed.next((m) => m.comment === 'connected', 'feed open')
  await waitFor(() => two.gateway.auditFeed.listeners === 1, 'listening')

  t.equal((await loginCall(one.url, 'carol', 'nope', { from: '127.0.0.9' })).status, 401, 'a failure on replica one')
  const m = await feed.next((m) => m.data?.includes('127.0.0.9') === true, 'replica two streams it')
  t.match(JSON.parse(m.data!), { event: 'login_failed', ip: '127.0.0.9' })
  await eventually(two, admin.access, 'ip=127.0.0.9', (e) => e.event === 'login_failed', 'replica two lists it')
})

t.test('Redis away: the stream answers 503 at once, an open stream ends (never hangs), lists 503', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const open = await openSse(h.url, '/admin/events/stream', admin.access)
  t.teardown(() => open.close())
  await open.next((m) => m.comment === 'connected', 'feed open')

  await h.redis.kill()
  await waitFor(() => open.ended, 'the open stream to end')
  t.pass('the open stream ended')
  // The token check needs Redis too: a fresh request is refused with 503 whichever check runs first.
  const res = await openSse(h.url, '/admin/events/stream', admin.access)
  t.equal(res.status, 503)
  await waitFor(() => res.ended, 'the 503 answer to complete')
  t.match(res.text, /store_unavailable/)
  t.equal((await h.request('GET', '/admin/events', { token: admin.access })).status, 503)
})
