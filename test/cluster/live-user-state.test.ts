// The live user state suite against a real Redis Cluster (test/cluster/use-cluster.ts).
import { clusterVariant } from './use-cluster.js'

clusterVariant('live-user-state')
