/** Decorates the login lockout (LOCKOUT_THRESHOLD failures per username and client IP). */
import fp from 'fastify-plugin'
import { LoginLockout } from '../../limits/login-lockout.js'

declare module 'fastify' {
  interface FastifyInstance {
    lockout: LoginLockout
  }
}

export default fp(async (fastify) => {
  const { limits } = fastify.config
  fastify.decorate('lockout', new LoginLockout(fastify.redis, limits.lockoutThreshold, limits.lockoutSeconds))
}, { name: 'login-lockout', dependencies: ['config', 'redis-store'] })
