/**
 * The Redis Cluster variants of the integration suites. A variant runs the suite's own file
 * (test/integration/<suite>.test.ts, or test/property/) in a child process whose environment says TEST_REDIS=cluster,
 * so every build(t) in it starts a real three-master Redis Cluster (dev-tools/redis-cluster.ts)
 * and points the gateway at it with REDIS_CLUSTER_NODES. The child's TAP output is this file's
 * subtest: a failure there fails here.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'

export function clusterVariant (suite: string, folder: 'integration' | 'property' = 'integration'): void {
  const file = fileURLToPath(new URL(`../${folder}/${suite}.test.ts`, import.meta.url))
  // process.execArgv carries tap's loaders (TypeScript, coverage) into the child.
  void t.spawn(process.execPath, [...process.execArgv, file], { env: { ...process.env, TEST_REDIS: 'cluster' } },
    `${suite} on a Redis Cluster`)
}

/** For a suite written for the cluster only (test/cluster/audit.test.ts): every build(t) of this process leases a cluster. */
export function useCluster (): void {
  process.env.TEST_REDIS = 'cluster'
}
