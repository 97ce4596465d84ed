// The verify suite against a real Redis Cluster (see use-cluster.ts).
import './use-cluster.js'
import '../integration/verify.test.js'
