/**
 * The dashboard's APIs beyond single pages of the trail: events bucketed per minute and hour
 * (GET /admin/events/buckets), the filtered trail as NDJSON (GET /admin/events/export) and the
 * search of a user by name (GET /admin/users?username=). Admin only, like every /admin API.
 */
import t from 'tap'
import { createServer } from 'node:http'
import { build, type Harness } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { loginCall } from '../helpers/abuse.js'
import { AUDIT_STREAM, AuditLog, minuteKey } from '../../src/audit/audit-log.js'
import { eventBuckets } from '../../src/audit/event-buckets.js'

async function exported (h: Harness, token: string,
  query = ''): Promise<{ status: number, type: string | null, disposition: string | null, lines: any[] }> {
  const res = await fetch(`${h.url}/admin/events/export${query}`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.text()
  const lines = res.status === 200 ? text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)) : []
  return { status: res.status, type: res.headers.get('content-type'), disposition: res.headers.get('content-disposition'), lines }
}

t.test('admin only: 401 without a token, 403 for a non-admin', async (t) => {
  const h = await build(t)
  const alice = await h.login('alice')
  for (const path of ['/admin/events/buckets', '/admin/events/buckets?window=day', '/admin/events/export', '/admin/users?username=alice']) {
    const anonymous = await h.request('GET', path)
    t.equal(anonymous.status, 401, `${path} without a token`)
    t.equal(anonymous.body.code, 'token_missing')
    const res = await h.request('GET', path, { token: alice.access })
    t.equal(res.status, 403, `${path} as a non-admin`)
    t.equal(res.body.code, 'forbidden')
  }
  const doc = (await h.request('GET', '/docs/json')).body as { paths: Record<string, Record<string, unknown>> }
  for (const path of ['/admin/events/buckets', '/admin/events/export', '/admin/users']) t.ok(doc.paths[path]?.get !== undefined,
    `the OpenAPI document lists GET ${path}`)
})

t.test('buckets: the last hour per minute and the last day per hour, counted server-side', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  // Events placed at known times (the append takes the time as an argument): 3 failed logins two
  // minutes ago, 1 reuse now, 2 blocks five hours ago (outside the hour, inside the day).
  const log = new AuditLog(redis, 7)
  const now = Date.now()
  for (let i = 0; i < 3; i++) await log.append('login_failed', { ip: '192.0.2.1', request_id: `r${i}` }, now - 120_000)
  await log.append('token_reuse_detected', { ip: '192.0.2.2', request_id: 'r3', user_id: '1001' }, now)
  for (let i = 0; i < 2; i++) await log.append('ip_blocked', { ip: '192.0.2.3', request_id: `b${i}` }, now - 5 * 3_600_000)

  const hour = await h.request('GET', '/admin/events/buckets', { token: admin.access })
  t.equal(hour.status, 200)
  t.equal(hour.body.window, 'hour')
  t.equal(hour.body.bucket_seconds, 60)
  t.equal(hour.body.times.length, 60, 'sixty minutes')
  const minutes = hour.body.times.map((s: string) => Date.parse(s))
  t.ok(minutes.every((m: number, i: number) => i === 0 || m - minutes[i - 1] === 60_000), 'consecutive minutes, oldest first')
  const currentMinute = Math.floor(Date.now() / 60_000) * 60_000
  t.ok(minutes[59] === currentMinute || minutes[59] === currentMinute - 60_000, 'the last bucket is the current minute')
  const at = (series: number[], ms: number): number =>
    series[hour.body.times.findIndex((s: string) => Date.parse(s) === Math.floor(ms / 60_000) * 60_000)] ?? -1
  t.equal(at(hour.body.series.login_failed, now - 120_000), 3, 'three failed logins in their minute')
  t.equal(hour.body.series.login_failed.reduce((a: number, b: number) => a + b, 0), 3, 'no other failed login in the hour')
  t.equal(at(hour.body.series.token_reuse_detected, now), 1, 'the reuse in the current minute')
  t.notOk('ip_blocked' in hour.body.series, 'a five-hour-old event is outside the hour')

  const day = await h.request('GET', '/admin/events/buckets?window=day', { token: admin.access })
  t.equal(day.status, 200)
  t.equal(day.body.bucket_seconds, 3600)
  t.equal(day.body.times.length, 24, 'twenty-four hours')
  const hours = day.body.times.map((s: string) => Date.parse(s))
  const blockHour = Math.floor((now - 5 * 3_600_000) / 3_600_000) * 3_600_000
  t.equal(day.body.series.ip_blocked[hours.indexOf(blockHour)], 2, 'the blocks in their hour')
  t.equal(day.body.series.ip_blocked.reduce((a: number, b: number) => a + b, 0), 2)
  t.ok((hour.body.series.login_succeeded?.[59] ?? 0) + (hour.body.series.login_succeeded?.[58] ?? 0) >= 1,
    'the admin\'s own login is counted too')

  // The counters expire: an hour bucket outlives the day it is shown in, by two hours.
  const keys = await redis.keys('{gw:audit}:[mh]:*')
  t.ok(keys.length > 0)
  for (const key of keys) t.ok(await redis.ttl(key) > 0, `${key} expires`)
  t.same(Object.keys((await eventBuckets(redis, 'day', now - 30 * 3_600_000)).series), [],
    'a day ago yesterday: nothing (the hour keys of today are outside it)')

  const bad = await h.request('GET', '/admin/events/buckets?window=week', { token: admin.access })
  t.equal(bad.status, 400)
  t.equal(bad.body.code, 'invalid_request')
})

t.test('export: the filtered trail as NDJSON, every matching event, newest first', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  const log = new AuditLog(redis, 7)
  const now = Date.now()
  // More than one page of the export (1000 per step), so that paging inside the stream is exercised.
  const pipeline = []
  // Events stored one by one (refused traffic such as rate_limited is aggregated past 20 per IP and minute).
  for (let i = 0; i < 2500; i++) pipeline.push(log.append(i % 2 === 0 ? 'login_failed' : 'token_refreshed',
    { ip: i % 5 === 0 ? '198.51.100.7' : '198.51.100.8', request_id: `x${i}` }, now - 60_000 + i))
  await Promise.all(pipeline)
  await new Promise((resolve) => setTimeout(resolve, 5))
  const mid = new Date().toISOString()
  await new Promise((resolve) => setTimeout(resolve, 5))
  const failed = await loginCall(h.url, 'alice', 'wrong-Secret-123')
  t.equal(failed.status, 401)
  await waitFor(async () => (await exported(h, admin.access, '?event=login_failed&ip=127.0.0.1')).lines.length === 1,
    'the live failed login in the export')

  const all = await exported(h, admin.access, '?event=login_failed')
  t.equal(all.status, 200)
  t.match(all.type, /^application\/x-ndjson/)
  t.match(all.disposition, /^attachment; filename="audit-.*\.ndjson"$/)
  t.equal(all.lines.length, 1250 + 1, 'every login_failed, across pages')
  t.ok(all.lines.every((e) => e.event === 'login_failed'), 'only the filtered event')
  const ids = all.lines.map((e) => e.id as string)
  t.equal(new Set(ids).size, ids.length, 'no event twice')
  const ms = all.lines.map((e) => Date.parse(e.time))
  t.ok(ms.every((m, i) => i === 0 || m <= ms[i - 1]!), 'newest first')
  t.ok(all.lines.every((e) => typeof e.ip === 'string' && typeof e.request_id === 'string'), 'each line a whole event')

  const byIp = await exported(h, admin.access, '?ip=198.51.100.7')
  t.equal(byIp.lines.length, 500, 'filtered by ip')
  const recent = await exported(h, admin.access, `?event=login_failed&since=${encodeURIComponent(mid)}`)
  t.equal(recent.lines.length, 1, 'filtered by since')
  t.equal(recent.lines[0].ip, '127.0.0.1')
  const older = await exported(h, admin.access, `?event=login_failed&until=${encodeURIComponent(mid)}`)
  t.equal(older.lines.length, 1250, 'filtered by until')
  const none = await exported(h, admin.access, '?event=token_reuse_detected')
  t.equal(none.status, 200)
  t.equal(none.lines.length, 0, 'nothing matching is an empty file')

  for (const query of ['?ip=not-an-ip', '?since=yesterday', '?limit=5', '?event=Bad%20Name']) {
    const res = await h.request('GET', `/admin/events/export${query}`, { token: admin.access })
    t.equal(res.status, 400, query)
    t.equal(res.body.code, 'invalid_request')
  }
})

t.test('find a user by name: state and sessions on one answer', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  await h.login('alice')
  await h.login('alice')
  const res = await h.request('GET', '/admin/users?username=Alice', { token: admin.access })
  t.equal(res.status, 200, res.text.slice(0, 200))
  t.match(res.body.user, { id: '1001', username: 'alice', active: true })
  t.equal(res.body.sessions.length, 2, 'both of her sessions')
  const missing = await h.request('GET', '/admin/users?username=nobody-here', { token: admin.access })
  t.equal(missing.status, 404)
  t.equal(missing.body.code, 'not_found')
  const empty = await h.request('GET', '/admin/users?username=', { token: admin.access })
  t.equal(empty.status, 400)
  const none = await h.request('GET', '/admin/users', { token: admin.access })
  t.equal(none.status, 400)
})

t.test('a backend without the search by name: 502, never "no such user"', async (t) => {
  const good = await build(t)
  const admin = await good.login('admin')
  // A backend that knows users by id but not the search call: a plain 404, as a server without the route answers.
  const server = createServer((req, res) => {
    req.resume()
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/internal/users/1003') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({ id: '1003', username: 'admin', roles: ['user', 'admin'], active: true })); return }
    res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not Found</h1>')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const { port } = server.address() as { port: number }
  const old = await build(t, { env: { USERS_URL: `http://127.0.0.1:${port}` }, redis: good.redis, keyRing: good.keyRing })
  const res = await old.request('GET', '/admin/users?username=alice', { token: admin.access })
  t.equal(res.status, 502, res.text.slice(0, 200))
  t.equal(res.body.code, 'upstream_unavailable')
})

t.test('a Redis error in the read itself: 503 store_unavailable, never a 500', async (t) => {
  const h = await build(t)
  const admin = await h.login('admin')
  const redis = h.redis.client()
  t.teardown(() => redis.disconnect())
  // Keys of the wrong type make the route's own reads fail (WRONGTYPE) while the admin's session
  // check, which touches other keys, still passes.
  const minute = Math.floor(Date.now() / 60_000)
  for (let m = minute - 2; m <= minute + 2; m++) await redis.set(minuteKey(m), 'not a hash', 'EX', 60)
  await redis.del(AUDIT_STREAM)
  await redis.set(AUDIT_STREAM, 'not a stream', 'EX', 60)
  for (const path of ['/admin/events/buckets', '/admin/events/export']) {
    const res = await h.request('GET', path, { token: admin.access })
    t.equal(res.status, 503, path)
    t.equal(res.body.code, 'store_unavailable')
    t.notMatch(res.text, /WRONGTYPE/, 'the cause stays in the log')
  }
})
