/**
 * A real three-master Redis Cluster for the tests: three `redis-server --cluster-enabled yes`
 * processes joined with `redis-cli --cluster create`. Nothing is persisted but each node's
 * cluster config (in a temporary folder), so a killed cluster comes back with its slots, empty.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, Redis } from 'ioredis'
import { startRedis, waitFor, type RedisProcess } from './redis-server.js'

const run = promisify(execFile)

async function clusterState (port: number): Promise<string> {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'])
    return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? 'unknown'
  } catch {
    return 'down'
  }
}

export async function startRedisCluster (): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-cluster-'))
  const nodes: RedisProcess[] = []
  for (let i = 0; i < 3; i++) {
    nodes.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--cluster-node-timeout', '2000']))
  }
  const addresses = nodes.map((n) => `127.0.0.1:${n.port}`)
  await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'])
  const allOk = async (): Promise<boolean> => (await Promise.all(nodes.map((n) => clusterState(n.port)))).every((s) => s === 'ok')
  await waitFor(allOk, 'cluster_state:ok on every node', 30_000)

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
    kill: async () => { await Promise.all(nodes.map((n) => n.kill())) },
    restart: async () => {
      await Promise.all(nodes.map((n) => n.restart()))
      await waitFor(allOk, 'cluster_state:ok after restart', 30_000)
    },
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** The Redis the test suite runs against: TEST_REDIS=cluster starts a cluster, else one server. */
export function startTestRedis (): Promise<RedisProcess> {
  return process.env.TEST_REDIS === 'cluster' ? startRedisCluster() : startRedis()
}
