/**
 * Checks credentials against the users service's internal endpoint. The call carries a gateway
 * assertion (aud `users`, scope `credentials:check`) so nothing else can use that endpoint, and the
 * route table never exposes it.
 */
import fp from 'fastify-plugin'
import { gatewayError } from '../../errors.js'
import type { Identity } from '../../tokens/token-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    users: UsersClient
  }
}

export interface UsersClient {
  /** The user's identity when the credentials are right and the user is active, else null. */
  checkCredentials: (username: string, password: string, requestId: string) => Promise<Identity | null>
}

export const CREDENTIALS_PATH = '/internal/credentials/check'

export default fp(async (fastify) => {
  const url = new URL(CREDENTIALS_PATH, fastify.config.upstreams.users)
  const timeoutMs = fastify.config.upstreamTimeoutMs
  const users: UsersClient = {
    async checkCredentials (username, password, requestId) {
      const assertion = await fastify.tokens.signAssertion('users', fastify.config.jwt.issuer, { scope: 'credentials:check' })
      let res: Response
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-gateway-assertion': assertion, 'x-request-id': requestId },
          body: JSON.stringify({ username, password }),
          signal: AbortSignal.timeout(timeoutMs)
        })
      } catch (err) {
        const timedOut = (err as Error).name === 'TimeoutError'
        throw gatewayError(timedOut ? 'upstream_timeout' : 'upstream_unavailable', undefined, {}, err)
      }
      if (res.status === 401) {
        await res.body?.cancel()
        return null
      }
      if (res.status !== 200) {
        await res.body?.cancel()
        throw gatewayError('upstream_unavailable', `users service answered ${res.status}`)
      }
      const user = await res.json() as { id: string, username: string, roles: string[] }
      return { userId: user.id, username: user.username, roles: user.roles }
    }
  }
  fastify.decorate('users', users)
}, { name: 'users-client', dependencies: ['config', 'token-service'] })
