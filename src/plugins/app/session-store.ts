/** Decorates the session store (sessions, refresh rotation and revocation in Redis). */
import fp from 'fastify-plugin'
import { SessionStore } from '../../sessions/session-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionStore
  }
}

export default fp(async (fastify) => {
  const { jwt } = fastify.config
  fastify.decorate('sessions', new SessionStore(fastify.redis, { refreshTtl: jwt.refreshTtl, reuseGraceSeconds: jwt.reuseGrace }))
}, { name: 'session-store', dependencies: ['config', 'redis-store'] })
