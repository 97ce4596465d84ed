// The machine-client suites against a real Redis Cluster (see use-cluster.ts): per-client keys
// under their own hash tag, the index in its own slot, two replicas on one cluster.
import './use-cluster.js'
import '../integration/machine-clients.test.js'
import '../integration/machine-clients-replicas.test.js'
