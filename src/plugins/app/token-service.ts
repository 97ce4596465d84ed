/** Decorates the token service (signing and strict verification of the gateway's JWTs). */
import fp from 'fastify-plugin'
import { TokenService } from '../../tokens/token-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
  }
}

export default fp(async (fastify) => {
  const { jwt } = fastify.config
  fastify.decorate('tokens', new TokenService(fastify.keys, {
    issuer: jwt.issuer,
    audience: jwt.audience,
    accessTtl: jwt.accessTtl,
    refreshTtl: jwt.refreshTtl,
    cacheSize: jwt.cacheSize
  }))
}, { name: 'token-service', dependencies: ['config', 'keys'] })
