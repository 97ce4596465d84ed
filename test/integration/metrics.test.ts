/** GET /metrics: Prometheus text with requests, latency, security events, Redis and upstream errors. */
import t from 'tap'
import { build } from '../helper.js'
import type { Redis } from 'ioredis'
import { freePort, waitFor } from '../helpers/redis-server.js'
import { sample } from '../helpers/metrics.js'


t.test('metrics', async (t) => {
  const deadPort = await freePort()
  const h = await build(t, { env: { ORDERS_URL: `http://127.0.0.1:${deadPort}` } })

  const alice = await h.login('alice')
  t.equal((await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'wrong' } })).status, 401)
  t.equal((await h.request('GET', '/no/such/route')).status, 404)
  t.equal((await h.request('GET', '/api/users/me', { token: alice.access })).status, 200)
  t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 502, 'orders upstream is down')

  const res = await h.request('GET', '/metrics')
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = res.text
  t.equal(sample(text, 'gateway_http_requests_total', 'route="/auth/login",method="POST",status="200"'), 1, 'one successful login')
  t.equal(sample(text, 'gateway_http_requests_total', 'route="/auth/login",method="POST",status="401"'), 1, 'one failed login')
  t.equal(sample(text, 'gateway_http_requests_total', 'route="unmatched",method="GET",status="404"'), 1,
    'the 404 under one label, not its path')
  t.equal(sample(text, 'gateway_http_requests_total', 'route="/api/users/*",method="GET",status="200"'), 1,
    'the proxied request by route pattern')
  t.ok((sample(text, 'gateway_http_request_duration_seconds_count', 'route="/auth/login",method="POST"') ?? 0) >= 2,
    'latency histogram of the login route')
  t.equal(sample(text, 'gateway_security_events_total', 'event="login_succeeded"'), 1)
  t.equal(sample(text, 'gateway_security_events_total', 'event="login_failed"'), 1)
  t.equal(sample(text, 'gateway_upstream_errors_total', 'upstream="orders",code="upstream_unavailable"'), 1,
    'upstream errors by upstream and code')
  t.ok((sample(text, 'gateway_redis_ping_seconds') ?? -1) >= 0, 'Redis answers: its PING latency')
  t.equal(sample(text, 'gateway_redis_up'), 1, 'gateway_redis_up 1 while Redis answers')
  t.ok(sample(text, 'gateway_process_cpu_user_seconds_total') !== undefined, 'default process metrics')
  const liveHeap = sample(text, 'gateway_nodejs_heap_after_gc_bytes') ?? 0
  t.ok(liveHeap > 1e6 && liveHeap <= (sample(text, 'gateway_nodejs_heap_size_total_bytes') ?? 0),
    'the live heap: more than nothing, within the committed heap')
  t.notMatch(text, alice.access, 'no token in the metrics')

  await h.redis.kill()
  t.equal((await h.request('GET', '/auth/sessions', { token: alice.access })).status, 503)
  const down = (await h.request('GET', '/metrics')).text
  t.equal(sample(down, 'gateway_redis_ping_seconds'), -1, 'Redis away: the PING gauge says -1')
  t.equal(sample(down, 'gateway_redis_up'), 0, 'Redis away: gateway_redis_up 0')
  t.ok((sample(down, 'gateway_redis_errors_total') ?? 0) >= 1, 'Redis errors are counted')
})

t.test('session cache metrics: hits and misses, entries, tracking, a flush when invalidations are lost',
  { skip: process.env.SESSION_CACHE === 'off' && 'the cache is off' }, async (t) => {
  const h = await build(t)
  const metrics = async (): Promise<string> => (await h.request('GET', '/metrics')).text
  await waitFor(async () => sample(await metrics(), 'gateway_session_cache_tracking') === 1, 'tracking on')
  const alice = await h.login('alice')
  for (let i = 0; i < 5; i++) t.equal((await h.request('GET', '/api/orders', { token: alice.access })).status, 200)
  const text = await metrics()
  t.ok((sample(text, 'gateway_session_cache_requests_total', 'result="miss"') ?? 0) >= 1, 'the first check went to Redis')
  t.ok((sample(text, 'gateway_session_cache_requests_total', 'result="hit"') ?? 0) >= 4, 'the next four were served from the cache')
  t.ok((sample(text, 'gateway_session_cache_entries') ?? 0) >= 1, 'the session is cached')
  t.equal(sample(text, 'gateway_session_cache_tracked_nodes'), 1, 'one Redis tracked')
  const flushes = sample(text, 'gateway_session_cache_flushes_total') ?? 0

  const redis = h.redis.client() as Redis
  t.teardown(() => redis.quit())
  t.ok(Number(await redis.client('KILL', 'TYPE', 'pubsub')) >= 1, 'invalidation connection killed')
  await waitFor(async () => (sample(await metrics(), 'gateway_session_cache_flushes_total') ?? 0) > flushes, 'the flush counted')
  await waitFor(async () => sample(await metrics(), 'gateway_session_cache_tracking') === 1, 'tracking back')
  t.pass('tracking on again after the loss')
})
