// The live user state suite against a real Redis Cluster (see use-cluster.ts).
import './use-cluster.js'
import '../integration/live-user-state.test.js'
