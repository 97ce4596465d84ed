/** Decorates the session store (sessions, refresh rotation and revocation in Redis). */
import fp from 'fastify-plugin'
import { SessionStore } from '../../sessions/session-store.js'
import { LIMIT_WINDOW_MS } from '../../limits/limit-headers.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionStore
  }
}

export default fp(async (fastify) => {
  const { jwt, limits } = fastify.config
  fastify.decorate('sessions', new SessionStore(fastify.redis, {
    refreshTtl: jwt.refreshTtl,
    reuseGraceSeconds: jwt.reuseGrace,
    refreshLimit: { max: limits.refreshPerSession, windowMs: LIMIT_WINDOW_MS },
    userStateTtl: fastify.config.userStateTtl,
    legacyUntilMs: fastify.config.legacy?.untilMs ?? null
  }))
}, { name: 'session-store', dependencies: ['config', 'redis-store'] })
