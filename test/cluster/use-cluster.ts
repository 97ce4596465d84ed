/**
 * Imported first by the cluster suites: every build(t) in the process then starts a real
 * three-master Redis Cluster and points the gateway at it with REDIS_CLUSTER_NODES.
 */
import t from 'tap'

process.env.TEST_REDIS = 'cluster'
// A cluster suite runs a whole integration suite against a cluster: on a loaded machine it needs
// more than tap's default 180 s (the clusters are pooled, see dev-tools/redis-cluster.ts).
t.setTimeout(Number(process.env.TEST_CLUSTER_TIMEOUT_MS ?? 600_000))
