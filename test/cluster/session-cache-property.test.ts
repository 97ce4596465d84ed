/**
 * The session cache on a Redis Cluster: the property test interleaving revocations and requests on
 * two replicas (test/property/session-cache-revocation.test.ts).
 */
import { clusterVariant } from './use-cluster.js'

clusterVariant('session-cache-revocation', 'property')
