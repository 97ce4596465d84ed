/**
 * Second factors (docs/mfa.md): decorates `mfa` with the factor store (records in the identity
 * backend, sealed with MFA_ENCRYPTION_KEY) and the short-lived state in Redis; null when
 * MFA_ENCRYPTION_KEY is unset (no second factors: logins are password logins).
 */
import fp from 'fastify-plugin'
import { FactorStore } from '../../mfa/factors.js'
import { MfaState } from '../../mfa/mfa-state.js'

export interface Mfa {
  factors: FactorStore
  state: MfaState
}

declare module 'fastify' {
  interface FastifyInstance {
    mfa: Mfa | null
  }
}

export default fp(async (fastify) => {
  const { key } = fastify.config.mfa
  fastify.decorate('mfa', key === null ? null : { factors: new FactorStore(fastify, key), state: new MfaState(fastify.redis) })
}, { name: 'mfa', dependencies: ['config', 'redis-store', 'users-client'] })
