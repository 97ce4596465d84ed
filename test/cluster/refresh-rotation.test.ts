// The refresh-rotation suite against a real Redis Cluster (test/cluster/use-cluster.ts).
import { clusterVariant } from './use-cluster.js'

clusterVariant('refresh-rotation')
