// The Redis Cluster helpers live in dev-tools/ (shared by the tests, the bench and the chaos soak).
export * from '../../dev-tools/redis-cluster.js'
