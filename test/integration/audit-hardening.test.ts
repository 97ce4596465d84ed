/**
 * The audit trail under attack and the admin event stream after the admin loses access:
 * - refused traffic without a token cannot grow the trail without bound: past 20 per client IP
 *   and minute, refused tokens and 429s become one aggregated event per IP and minute with the
 *   count (which, like every event, renews the Stream's expiry), and the Stream is capped by
 *   length (AUDIT_MAX_EVENTS);
 * - every event has an `ip`, also one written after a proxied body (a wrong current password),
 *   and old entries without one do not break GET /admin/events;
 * - malformed `cursor`/`until` are 400, not a Redis outage;
 * - an open stream ends once its session is revoked (logout), its user deactivated or demoted;
 *   at most 5 streams per admin session; HEAD answers the stream's headers at once.
 */
import t from 'tap'
import { build, type Harness } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { openSse } from '../helpers/sse.js'
import { AGGREGATE_AFTER, AGGREGATE_EVENT, AUDIT_STREAM } from '../../src/audit/audit-log.js'
import { STREAMS_PER_SESSION } from '../../src/plugins/app/audit.js'

/** Every entry of the Stream, parsed. */
async function entries (h: Harness): Promise<any[]> {
  const redis = h.redis.client()
  try {
    const raw = await redis.xrange(AUDIT_STREAM, '-', '+')
    return raw.map(([id, fields]) => ({ id, ...JSON.parse(fields[1] ?? '{}') }))
  } finally {
    redis.disconnect()
  }
}

const REFUSED = new Set(['token_rejected', 'rate_limited', 'access_denied'])
const sum = (counts: Record<string, number>): number => [...REFUSED].reduce((n, e) => n + (counts[e] ?? 0), 0)

t.test('a flood of bogus tokens: at most 20 entries per IP and minute, then one aggregated event with the count', async (t) => {
  const h = await build(t, { env: { PUBLIC_IP_LIMIT: '30' } })
  const admin = await h.login('admin')
  const statuses: number[] = []
  for (let i = 0; i < 150; i++) {
    statuses.push((await h.request('GET', '/api/orders', { token: `bogus.token.${i}` })).status)
  }
  t.ok(statuses.includes(401) && statuses.includes(429), 'refused with 401, then 429 past the per-IP limit')

  // Appends are fire-and-forget: wait until the per-type counters have seen every request.
  let counts: Record<string, number> = {}
  await waitFor(async () => {
    counts = (await h.request('GET', '/admin/events/counts', { token: admin.access })).body.hour
    return (counts.token_rejected ?? 0) >= 150
  }, 'every refused token counted')
  const total = sum(counts)
  t.ok(total >= 150, `the dashboard counters count every refused request (${total})`)

  const before = await entries(h)
  const individual = before.filter((e) => REFUSED.has(e.event as string))
  const minutes = new Set(individual.map((e) => Math.floor(Number(String(e.id).split('-')[0]) / 60_000)))
  t.ok(individual.length <= AGGREGATE_AFTER * minutes.size,
    `at most ${AGGREGATE_AFTER} refused events stored one by one per minute (${individual.length} in ${minutes.size})`)
  t.ok(individual.length >= AGGREGATE_AFTER, 'the first ones are stored one by one')
  t.ok(before.every((e) => typeof e.ip === 'string' && e.ip.length > 0), 'every entry has an ip')
  t.ok(before.length < 60, `the Stream did not grow with the flood (${before.length} entries for ${total} events)`)

  // As if the trail's last event were days old: the flush's append must push its expiry out again.
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  await redis.expire(AUDIT_STREAM, 100)
  // Once the minute is over (here: its flush is asked for as if it were), one event per IP and minute.
  const appended = await h.gateway.audit.flushAggregated(Date.now() + 70_000)
  t.ok(appended >= 1 && appended <= 2, `one aggregated event per minute the flood spanned (${appended})`)
  const ttl = await redis.ttl(AUDIT_STREAM)
  t.ok(ttl > 7 * 86_400 - 60 && ttl <= 7 * 86_400, `the aggregated events renew the Stream's expiry (TTL ${ttl} s)`)
  const aggregated = (await entries(h)).filter((e) => e.event === AGGREGATE_EVENT)
  t.equal(aggregated.length, appended)
  t.ok(aggregated.every((e) => e.ip === '127.0.0.1' && typeof e.minute === 'string' && typeof e.request_id === 'string'),
    'each names the IP and the minute')
  const aggregatedCount = aggregated.reduce((n, e) => n + Number(e.count), 0)
  t.equal(individual.length + aggregatedCount, total, 'stored one by one + aggregated counts = every refused event')
  const byEvent = aggregated.reduce((n, e) => n + Object.values(e.events as Record<string, number>).reduce((a, b) => a + b, 0), 0)
  t.equal(byEvent, aggregatedCount, 'the per-event breakdown adds up to the count')
  t.equal(await h.gateway.audit.flushAggregated(Date.now() + 70_000), 0, 'a minute is flushed once (by one replica)')

  const listed = await h.request('GET', `/admin/events?event=${AGGREGATE_EVENT}`, { token: admin.access })
  t.equal(listed.status, 200)
  t.equal(listed.body.events.length, appended, 'admins find it with the event filter')
})

t.test('the Stream is capped by length (AUDIT_MAX_EVENTS)', async (t) => {
  const h = await build(t, { env: { AUDIT_MAX_EVENTS: '1000' } })
  for (let i = 0; i < 1200; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) =>
      h.gateway.audit.append('login_failed', { ip: `10.1.${(i + j) >> 8}.${(i + j) & 255}`, request_id: `r${i + j}` })))
  }
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  t.equal(await redis.xlen(AUDIT_STREAM), 1000, 'never more than AUDIT_MAX_EVENTS entries')
  const [[, newest] = ['', []]] = await redis.xrevrange(AUDIT_STREAM, '+', '-', 'COUNT', 1)
  t.match(JSON.parse(newest[1] ?? '{}'), { request_id: 'r1199' }, 'the newest are kept')
})

t.test('a wrong current password: the event has the client IP, and GET /admin/events answers', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const bob = await h.login('bob')
  const wrong = await h.request('POST', '/api/users/me/password',
    { token: bob.access, body: { current_password: 'not-my-password', new_password: 'long-enough-1' } })
  t.equal(wrong.status, 400, 'wrong current password')
  let res: any
  await waitFor(async () => {
    res = await h.request('GET', '/admin/events?event=login_failed', { token: admin.access })
    return res.status !== 200 || res.body.events.length > 0
  }, 'the failed password check in the trail')
  t.equal(res.status, 200, 'GET /admin/events answers')
  t.match(res.body.events[0], { event: 'login_failed', user_id: '1002', ip: '127.0.0.1', reason: 'wrong_current_password' })

  // An entry stored without an ip (before this was fixed) still reads.
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  await redis.xadd(AUDIT_STREAM, '*', 'd', JSON.stringify({ event: 'login_failed', user_id: '1002' }))
  const all = await h.request('GET', '/admin/events', { token: admin.access })
  t.equal(all.status, 200, 'an old entry without ip does not break the API')
  t.equal(all.body.events[0].ip, 'unknown')
})

t.test('malformed cursor and times are 400 invalid_request, not a Redis outage', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const metric = async (): Promise<number> => {
    const text = (await h.request('GET', '/metrics')).text
    return Number(/^gateway_redis_errors_total (\d+)/m.exec(text)?.[1] ?? 'NaN')
  }
  const before = await metric()
  for (const query of ['cursor=1-99999999999999999999', 'cursor=99999999999999-18446744073709551616', 'until=1969-12-31T23:59Z',
    'since=1969-12-31T23:59:59Z', 'until=0001-01-01T00:00Z']) {
    const res = await h.request('GET', `/admin/events?${query}`, { token: admin.access })
    t.equal(res.status, 400, `${query}: 400`)
    t.equal(res.body.code, 'invalid_request', `${query}: invalid_request`)
  }
  t.equal((await h.request('GET', '/admin/events?cursor=18446744073709-18446744073709551615', { token: admin.access })).status, 200,
    'the largest valid cursor is fine')
  t.equal(await metric(), before, 'no Redis error counted')
})

t.test('an open event stream ends on logout, on deactivation and on demotion', async (t) => {
  const h = await build(t, { env: { USER_STATE_TTL: '3600' } })
  const root = await h.login('admin')
  // A second admin to demote and deactivate: alice, promoted by the admin.
  t.equal((await h.request('PATCH', '/api/users/1001', { token: root.access, body: { roles: ['user', 'admin'] } })).status, 200)

  const loggedOut = await h.login('admin')
  const stream1 = await openSse(h.url, '/admin/events/stream', loggedOut.access)
  t.equal(stream1.status, 200)
  t.teardown(() => stream1.close())
  t.equal((await h.request('POST', '/auth/logout', { token: loggedOut.access })).status, 204)
  await waitFor(() => stream1.ended, 'the stream of a logged-out session to end', 5000)
  t.pass('ended after logout')

  const alice = await h.login('alice')
  const stream2 = await openSse(h.url, '/admin/events/stream', alice.access)
  t.equal(stream2.status, 200, 'alice is an admin now')
  t.teardown(() => stream2.close())
  t.equal((await h.request('PATCH', '/api/users/1001', { token: root.access, body: { roles: ['user'] } })).status, 200, 'demoted')
  await waitFor(() => stream2.ended, 'the stream of a demoted admin to end', 5000)
  t.pass('ended after demotion')

  t.equal((await h.request('PATCH', '/api/users/1001', { token: root.access, body: { roles: ['user', 'admin'] } })).status, 200)
  const again = await h.login('alice')
  const stream3 = await openSse(h.url, '/admin/events/stream', again.access)
  t.equal(stream3.status, 200)
  t.teardown(() => stream3.close())
  t.equal((await h.request('PATCH', '/api/users/1001', { token: root.access, body: { active: false } })).status, 200, 'deactivated')
  await waitFor(() => stream3.ended, 'the stream of a deactivated admin to end', 5000)
  t.pass('ended after deactivation')

  const stays = await openSse(h.url, '/admin/events/stream', root.access)
  t.teardown(() => stays.close())
  await stays.next((m) => m.comment === 'connected', 'connected')
  t.notOk(stays.ended, 'another admin\'s stream stays')
})

t.test('at most 5 streams per admin session; HEAD answers the headers at once', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const open = []
  for (let i = 0; i < STREAMS_PER_SESSION; i++) {
    const s = await openSse(h.url, '/admin/events/stream', admin.access)
    t.teardown(() => s.close())
    t.equal(s.status, 200, `stream ${i + 1}`)
    open.push(s)
  }
  const extra = await openSse(h.url, '/admin/events/stream', admin.access)
  t.teardown(() => extra.close())
  t.equal(extra.status, 429, 'one more is 429')
  t.equal(JSON.parse(extra.text).code, 'rate_limited')
  const other = await h.login('admin')
  const otherSession = await openSse(h.url, '/admin/events/stream', other.access)
  t.teardown(() => otherSession.close())
  t.equal(otherSession.status, 200, 'another session of the same admin has its own slots')

  open[0]!.close()
  await waitFor(async () => {
    const s = await openSse(h.url, '/admin/events/stream', admin.access)
    s.close()
    return s.status === 200
  }, 'a closed stream gives its slot back')
  t.pass('slot given back')

  const head = await fetch(`${h.url}/admin/events/stream`,
    { method: 'HEAD', headers: { authorization: `Bearer ${admin.access}` }, signal: AbortSignal.timeout(10_000) })
  t.equal(head.status, 200, 'HEAD answers')
  t.match(head.headers.get('content-type'), /^text\/event-stream/)
  t.equal(head.headers.get('cache-control'), 'no-store')
})
