/**
 * The session cache's race on a Redis Cluster: revoke through one replica, call the other at once,
 * the 1,000 rounds of test/integration/session-cache-replicas.test.ts.
 */
import { clusterVariant } from './use-cluster.js'

clusterVariant('session-cache-replicas')
