/**
 * Defaults the gateway and the stub services share (src/config.ts, services/shared/stub-config.ts):
 * the log levels and where each program of the dev stack listens, so each is written once.
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORTS = { gateway: 8080, users: 3001, orders: 3002 } as const

/** The upstreams' URLs when USERS_URL / ORDERS_URL are not set: the stubs on their default ports. */
export const DEFAULT_UPSTREAM_URLS = {
  USERS_URL: `http://${DEFAULT_HOST}:${DEFAULT_PORTS.users}`,
  ORDERS_URL: `http://${DEFAULT_HOST}:${DEFAULT_PORTS.orders}`
} as const

/** Where the stubs read the gateway's public keys when GATEWAY_JWKS_URL is not set. */
export const DEFAULT_JWKS_URL = `http://${DEFAULT_HOST}:${DEFAULT_PORTS.gateway}/.well-known/jwks.json`
