// The refresh-rotation suite against a real Redis Cluster (see use-cluster.ts).
import './use-cluster.js'
import '../integration/refresh-rotation.test.js'
