/** Decorates the machine-client registry and the per-IP count of failed client authentications. */
import fp from 'fastify-plugin'
import { ClientAuthFailures } from '../../clients/client-auth-failures.js'
import { ClientStore } from '../../clients/client-store.js'
import { LIMIT_WINDOW_MS } from '../../limits/limit-headers.js'

declare module 'fastify' {
  interface FastifyInstance {
    clients: ClientStore
    clientAuthFailures: ClientAuthFailures
  }
}

export default fp(async (fastify) => {
  const local = fastify.localState
  fastify.decorate(
    'clients',
    new ClientStore(fastify.redis, local === null ? undefined : { ...local, apiLimit: fastify.config.limits.apiPerClient })
  )
  // Wrong client secrets count per client IP like failed logins (LOGIN_IP_LIMIT a minute).
  fastify.decorate('clientAuthFailures', new ClientAuthFailures(fastify.redis, fastify.config.limits.loginPerIp, LIMIT_WINDOW_MS))
}, { name: 'client-store', dependencies: ['config', 'redis-store', 'session-store'] })
