import { startStub } from '../shared/stub-server.js'
import { buildOrdersService } from './app.js'
import { DEFAULT_PORTS } from '../../src/lib/defaults.js'

// With ORDERS_CLIENT_ID and ORDERS_CLIENT_SECRET (a client with the scope token-exchange) each
// user's order records their profile's username, read through the gateway on their behalf.
await startStub(async (opts, logger, env) => {
  if ((env.ORDERS_CLIENT_ID === undefined) !== (env.ORDERS_CLIENT_SECRET === undefined)) {
    process.stderr.write('invalid configuration: ORDERS_CLIENT_ID and ORDERS_CLIENT_SECRET go together\n')
    process.exit(1)
  }
  const gatewayUrl = env.GATEWAY_URL ?? new URL(env.GATEWAY_JWKS_URL).origin
  const delegation = env.ORDERS_CLIENT_ID !== undefined && env.ORDERS_CLIENT_SECRET !== undefined
    ? { gatewayUrl: gatewayUrl.replace(/\/+$/, ''), clientId: env.ORDERS_CLIENT_ID, clientSecret: env.ORDERS_CLIENT_SECRET }
    : undefined
  return await buildOrdersService({ ...opts, ...(delegation !== undefined ? { delegation } : {}) }, logger)
}, 'ORDERS_PORT', DEFAULT_PORTS.orders)
