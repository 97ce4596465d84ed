/**
 * The session cache on a real Redis Cluster (docs/session-cache.md, "Redis Cluster"): tracking on
 * every master, no Redis command for a cached session, a lost invalidation connection of one node,
 * a slot moved to another master under a cached session, and a fail-over to a replica, each with a
 * revocation through one replica refused by the other at the next request.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { useCluster } from './use-cluster.js'
import { build, type Harness, type HttpResult } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { sample } from '../helpers/metrics.js'
import { startRedis, waitFor, type RedisProcess } from '../helpers/redis-server.js'
import { startTestRedis } from '../helpers/redis-cluster.js'
import { sessionKeys } from '../../src/sessions/session-store.js'

useCluster()

const ENV = { ...RELAXED_LIMITS, USER_STATE_TTL: '3600', LIMIT_SYNC_MS: '5000' }

interface Node { address: string, client: Redis }

/** A connection to each master the cluster started with. */
function nodesOf (t: Test, redis: RedisProcess): Node[] {
  return (redis.env.REDIS_CLUSTER_NODES ?? '').split(',').map((address) => {
    const [host, port] = address.split(':')
    const client = new Redis({ host, port: Number(port) })
    t.teardown(() => { client.disconnect() })
    return { address, client }
  })
}

/** The master serving `key`'s slot: its address and node id. */
async function ownerOf (nodes: Node[], key: string): Promise<{ slot: number, address: string, id: string }> {
  const any = nodes[0]!.client
  const slot = Number(await any.call('CLUSTER', 'KEYSLOT', key))
  const ranges = await any.call('CLUSTER', 'SLOTS') as Array<[number, number, [string, number, string]]>
  const range = ranges.find(([from, to]) => slot >= from && slot <= to)
  if (range === undefined) throw new Error(`slot ${slot} not served`)
  return { slot, address: `${range[2][0]}:${range[2][1]}`, id: range[2][2] }
}

/** Moves a slot with its keys to another master (what `redis-cli --cluster reshard` does). */
async function moveSlot (nodes: Node[], slot: number, from: Node, to: Node): Promise<void> {
  const fromId = String(await from.client.call('CLUSTER', 'MYID'))
  const toId = String(await to.client.call('CLUSTER', 'MYID'))
  const [host, port] = to.address.split(':')
  await to.client.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId)
  await from.client.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId)
  for (;;) {
    const keys = await from.client.call('CLUSTER', 'GETKEYSINSLOT', slot, 100) as string[]
    if (keys.length === 0) break
    await from.client.call('MIGRATE', host!, port!, '', 0, 5000, 'KEYS', ...keys)
  }
  for (const n of [to, from, ...nodes.filter((n) => n !== to && n !== from)]) await n.client.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId)
}

/** Scripts run by the cluster so far (every session check and counter batch is one). */
async function scriptCalls (nodes: Node[]): Promise<number> {
  let calls = 0
  for (const n of nodes) {
    const info = await n.client.info('commandstats')
    for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1])
  }
  return calls
}

async function metric (h: Harness, name: string, labels = ''): Promise<number | undefined> {
  return sample((await h.request('GET', '/metrics')).text, name, labels)
}

async function orders (h: Harness, token: string, n: number): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < n; i++) statuses.push((await h.request('GET', '/api/orders', { token })).status)
  return statuses
}

/** Waits until the replica serves the session from its cache (no script for five requests). */
async function cached (h: Harness, nodes: Node[], token: string): Promise<void> {
  await waitFor(async () => {
    await orders(h, token, 1)
    const before = await scriptCalls(nodes)
    await orders(h, token, 5)
    return await scriptCalls(nodes) - before === 0
  }, 'session served from the cache')
}

function sidOf (access: string): string {
  return (JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid
}

const refused = (res: HttpResult): boolean => res.status === 401 && (res.body as { code?: string } | null)?.code === 'token_revoked'

async function twoReplicas (t: Test, redis?: RedisProcess): Promise<[Harness, Harness]> {
  const a = await build(t, { env: ENV, ...(redis !== undefined ? { redis } : {}) })
  const b = await build(t, { env: { ...ENV, USERS_URL: a.config.upstreams.users }, redis: a.redis, keyRing: a.keyRing })
  return [a, b]
}

t.test('tracking on every master: no Redis command for a cached session, a revocation refused by the other replica', async (t) => {
  const [a, b] = await twoReplicas(t)
  const nodes = nodesOf(t, a.redis)
  await waitFor(async () => await metric(b, 'gateway_session_cache_tracking') === 1, 'b tracking')
  t.equal(await metric(b, 'gateway_session_cache_tracked_nodes'), 3, 'b tracks all three masters')
  const alice = await a.login('alice')
  await cached(b, nodes, alice.access)
  const before = await scriptCalls(nodes)
  t.same(new Set(await orders(b, alice.access, 30)), new Set([200]))
  t.ok(await scriptCalls(nodes) - before <= 2, '30 requests: at most a counter batch in Redis')
  t.ok((await metric(b, 'gateway_session_cache_requests_total', 'result="hit"') ?? 0) >= 30, 'counted as hits')
  t.equal((await a.request('POST', '/auth/logout', { token: alice.access, body: {} })).status, 204)
  t.ok(refused(await b.request('GET', '/api/orders', { token: alice.access })), 'refused by b at once')
})

t.test('a lost invalidation connection of one master: Redis is asked until tracking is back there', async (t) => {
  const [a, b] = await twoReplicas(t)
  const nodes = nodesOf(t, a.redis)
  const [alice, again] = [await a.login('alice'), await a.login('alice')]
  await cached(b, nodes, alice.access)
  await orders(b, again.access, 2)
  const address = (await ownerOf(nodes, sessionKeys.state('1001'))).address
  const node = nodes.find((n) => n.address === address)!
  t.ok(Number(await node.client.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 1, 'invalidation connections of alice\'s master killed')
  await node.client.del(sessionKeys.record('1001', sidOf(alice.access)))
  t.ok(refused(await b.request('GET', '/api/orders', { token: alice.access })), 'revoked meanwhile: refused at once')
  await cached(b, nodes, again.access)
  t.pass('tracking back: the other session is served from the cache again')
  t.equal((await a.request('POST', '/auth/logout', { token: again.access, body: {} })).status, 204)
  t.ok(refused(await b.request('GET', '/api/orders', { token: again.access })), 'and a revocation through a holds on b at once')
})

t.test('a slot moved to another master under a cached session: the cache is dropped, revocations hold', async (t) => {
  const [a, b] = await twoReplicas(t)
  const nodes = nodesOf(t, a.redis)
  const alice = await a.login('alice')
  const second = await a.login('alice')
  await cached(b, nodes, alice.access)
  await orders(b, second.access, 2)
  const flushes = await metric(b, 'gateway_session_cache_flushes_total') ?? 0
  const { slot, address } = await ownerOf(nodes, sessionKeys.state('1001'))
  const from = nodes.find((n) => n.address === address)!
  const to = nodes.find((n) => n !== from)!
  await moveSlot(nodes, slot, from, to)
  t.equal((await ownerOf(nodes, sessionKeys.state('1001'))).address, to.address, 'alice\'s slot is served by another master')
  // The session moved with its slot: still accepted on both replicas.
  t.same(await orders(b, alice.access, 2), [200, 200], 'b still accepts the moved session')
  t.same(await orders(a, alice.access, 1), [200], 'a too')
  await waitFor(async () => (await metric(b, 'gateway_session_cache_flushes_total') ?? 0) > flushes, 'b dropped its cache')
  await cached(b, nodes, alice.access)
  t.pass('b caches the session again, read from its new master')
  t.equal((await a.request('POST', '/auth/logout', { token: alice.access, body: {} })).status, 204)
  t.ok(refused(await b.request('GET', '/api/orders', { token: alice.access })), 'a revocation after the move: refused by b at once')
  t.equal((await a.request('DELETE', `/auth/sessions/${sidOf(second.access)}`, { token: second.access })).status, 204)
  t.ok(refused(await b.request('GET', '/api/orders', { token: second.access })), 'and the other session too')
})

t.test('a fail-over to a replica under a cached session: a revocation right after it is refused by the other replica', async (t) => {
  const redis = await startTestRedis()
  t.teardown(() => redis.stop())
  const nodes = nodesOf(t, redis)
  // A replica of alice's master, joined to the cluster.
  const { address: masterAddress, id: masterId } = await ownerOf(nodes, sessionKeys.state('1001'))
  const replica = await startRedis(
    ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes-{port}.conf', '--cluster-node-timeout', '2000'])
  t.teardown(() => replica.stop())
  const replicaClient = new Redis(replica.url)
  t.teardown(() => { replicaClient.disconnect() })
  const [masterHost, masterPort] = masterAddress.split(':')
  await replicaClient.call('CLUSTER', 'MEET', masterHost!, masterPort!)
  await waitFor(async () => String(await replicaClient.call('CLUSTER', 'NODES')).includes(masterId), 'the replica knows the master')
  await replicaClient.call('CLUSTER', 'REPLICATE', masterId)
  await waitFor(async () => (await replicaClient.info('replication')).includes('master_link_status:up'), 'the replica in sync')

  const [a, b] = await twoReplicas(t, redis)
  const alice = await a.login('alice')
  const second = await a.login('alice')
  await waitFor(async () => await metric(b, 'gateway_session_cache_tracked_nodes') === 4, 'b tracks the replica too')
  await cached(b, nodes, alice.access)
  await orders(b, second.access, 2)
  await replicaClient.call('CLUSTER', 'FAILOVER')
  await waitFor(async () => (await replicaClient.call('ROLE') as string[])[0] === 'master', 'the replica promoted')
  // At once: neither gateway has been told of the fail-over yet.
  t.equal((await a.request('POST', '/auth/logout', { token: alice.access, body: {} })).status, 204, 'revoked through a')
  t.ok(refused(await b.request('GET', '/api/orders', { token: alice.access })), 'refused by b at the next request')
  await cached(b, [...nodes, { address: `127.0.0.1:${replica.port}`, client: replicaClient }], second.access)
  t.pass('b caches sessions again after the fail-over')
  t.equal((await a.request('POST', '/auth/logout', { token: second.access, body: {} })).status, 204)
  t.ok(refused(await b.request('GET', '/api/orders', { token: second.access })), 'and revocations hold after it')
})
