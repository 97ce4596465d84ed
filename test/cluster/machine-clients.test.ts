// The machine-client suites against a real Redis Cluster (test/cluster/use-cluster.ts): per-client keys
// under their own hash tag, the index in its own slot, two replicas on one cluster.
import { clusterVariant } from './use-cluster.js'

clusterVariant('machine-clients')
clusterVariant('machine-clients-replicas')
