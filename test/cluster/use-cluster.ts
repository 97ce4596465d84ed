/**
 * Imported first by the cluster suites: every build(t) in the process then starts a real
 * three-master Redis Cluster and points the gateway at it with REDIS_CLUSTER_NODES.
 */
process.env.TEST_REDIS = 'cluster'
