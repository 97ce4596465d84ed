// The cookie-mode suite against a real Redis Cluster (see use-cluster.ts).
import './use-cluster.js'
import '../integration/cookie-mode.test.js'
