/**
 * A real three-master Redis Cluster: three `redis-server --cluster-enabled yes` processes joined
 * with `redis-cli --cluster create`. Nothing is persisted but each node's cluster config (in the
 * node's temporary folder), so a killed cluster comes back with its slots, empty.
 *
 * A cluster takes seconds to form on a busy machine, and a test file may build a gateway fifteen
 * times: `leaseTestCluster` keeps the clusters of a test process in a pool. `stop()` of a lease
 * empties the cluster (FLUSHALL, SCRIPT FLUSH on every master) and gives it back; a cluster that a
 * test left unhealthy is thrown away. Every node is killed when the process ends.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { Cluster, Redis } from 'ioredis'
import { startRedis, waitFor, type RedisProcess } from './redis-server.js'

const run = promisify(execFile)
const FORM_TIMEOUT_MS = Number(process.env.TEST_REDIS_START_TIMEOUT_MS ?? 60_000)

async function clusterState (port: number): Promise<string> {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'], { timeout: 5_000 })
    return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? 'unknown'
  } catch {
    return 'down'
  }
}

export async function startRedisCluster (): Promise<RedisProcess> {
  const nodes: RedisProcess[] = []
  const stopAll = async (): Promise<void> => { await Promise.all(nodes.map((n) => n.stop())) }
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes-{port}.conf', '--cluster-node-timeout',
        '2000']))
    }
  } catch (err) {
    await stopAll()
    throw err
  }
  const addresses = nodes.map((n) => `127.0.0.1:${n.port}`)
  const allOk = async (): Promise<boolean> => (await Promise.all(nodes.map((n) => clusterState(n.port)))).every((s) => s === 'ok')
  try {
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: FORM_TIMEOUT_MS })
    await waitFor(allOk, 'cluster_state:ok on every node', FORM_TIMEOUT_MS)
  } catch (err) {
    await stopAll()
    throw err
  }

  const startup = nodes.map((n) => ({ host: '127.0.0.1', port: n.port }))
  const first = nodes[0]!
  return {
    port: first.port,
    url: first.url,
    env: { REDIS_CLUSTER_NODES: addresses.join(',') },
    client: () => new Cluster(startup),
    keys: async (pattern) => {
      const found: string[] = []
      for (const n of nodes) {
        const client = new Redis(n.url)
        try { found.push(...await client.keys(pattern)) } finally { client.disconnect() }
      }
      return found
    },
    flushAll: async () => {
      for (const n of nodes) {
        const client = new Redis(n.url)
        try { await client.flushall() } finally { client.disconnect() }
      }
    },
    kill: async () => { await Promise.all(nodes.map((n) => n.kill())) },
    restart: async () => {
      await Promise.all(nodes.map((n) => n.restart()))
      await waitFor(allOk, 'cluster_state:ok after restart', FORM_TIMEOUT_MS)
    },
    stop: stopAll
  }
}

interface Pooled { cluster: RedisProcess, nodes: string[] }
const idle: Pooled[] = []

/** Empties every master; false when the cluster is not healthy any more. */
async function reset (pooled: Pooled): Promise<boolean> {
  try {
    for (const address of pooled.nodes) {
      const [host, port] = address.split(':')
      const client = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
      try {
        await client.connect()
        const info = await client.cluster('INFO') as string
        if (!info.includes('cluster_state:ok')) return false
        await client.flushall()
        await client.script('FLUSH')
      } finally {
        client.disconnect()
      }
    }
    return true
  } catch {
    return false
  }
}

/** A cluster of the pool (started when none is idle); its `stop()` returns it emptied. */
export async function leaseTestCluster (): Promise<RedisProcess> {
  const pooled = idle.pop() ?? await (async () => {
    const cluster = await startRedisCluster()
    return { cluster, nodes: cluster.env.REDIS_CLUSTER_NODES!.split(',') }
  })()
  let returned = false
  return {
    ...pooled.cluster,
    stop: async () => {
      if (returned) return
      returned = true
      if (await reset(pooled)) idle.push(pooled)
      else await pooled.cluster.stop()
    }
  }
}

/** The Redis the test suite runs against: TEST_REDIS=cluster leases a cluster, else one server. */
export function startTestRedis (): Promise<RedisProcess> {
  return process.env.TEST_REDIS === 'cluster' ? leaseTestCluster() : startRedis()
}
