// The rate-limits suite against a real Redis Cluster (see use-cluster.ts).
import './use-cluster.js'
import '../integration/rate-limits.test.js'
