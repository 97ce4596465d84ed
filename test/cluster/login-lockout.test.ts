// The login-lockout suite against a real Redis Cluster (see use-cluster.ts).
import './use-cluster.js'
import '../integration/login-lockout.test.js'
