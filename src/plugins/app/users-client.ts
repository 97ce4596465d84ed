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

/** A user as the identity backend describes it (`GET /internal/users/{id}`). */
export interface BackendUser {
  id: string
  username: string
  roles: string[]
  active: boolean
}

export interface UsersClient {
  /** The user's identity when the credentials are right and the user is active, else null. */
  checkCredentials: (username: string, password: string, requestId: string) => Promise<Identity | null>
  /** The user's current state, or null when the backend knows no such user. */
  lookupUser: (userId: string, requestId: string) => Promise<BackendUser | null>
}

export const CREDENTIALS_PATH = '/internal/credentials/check'
export const USER_PATH = '/internal/users/'

export default fp(async (fastify) => {
  const url = new URL(CREDENTIALS_PATH, fastify.config.upstreams.users)
  const timeoutMs = fastify.config.upstreamTimeoutMs
  /** One call to the identity backend with an assertion naming its scope; network failures mapped to 502/504. */
  async function call (target: URL, scope: string, requestId: string, init: { method: string, body?: string }): Promise<Response> {
    const assertion = await fastify.tokens.signAssertion('users', fastify.config.jwt.issuer, { scope })
    const headers: Record<string, string> = { 'x-gateway-assertion': assertion, 'x-request-id': requestId }
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    try {
      return await fetch(target, { ...init, headers, signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      const timedOut = (err as Error).name === 'TimeoutError'
      throw gatewayError(timedOut ? 'upstream_timeout' : 'upstream_unavailable', undefined, {}, err)
    }
  }

  const users: UsersClient = {
    async checkCredentials (username, password, requestId) {
      const res = await call(url, 'credentials:check', requestId, { method: 'POST', body: JSON.stringify({ username, password }) })
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
    },

    async lookupUser (userId, requestId) {
      const res = await call(new URL(USER_PATH + encodeURIComponent(userId), fastify.config.upstreams.users), 'users:read', requestId, { method: 'GET' })
      if (res.status === 404) {
        await res.body?.cancel()
        return null
      }
      if (res.status !== 200) {
        await res.body?.cancel()
        throw gatewayError('upstream_unavailable', `users service answered ${res.status}`)
      }
      const user = await res.json() as BackendUser
      if (typeof user.id !== 'string' || typeof user.username !== 'string' || !Array.isArray(user.roles) || typeof user.active !== 'boolean') {
        throw gatewayError('upstream_unavailable', 'users service answered a malformed user')
      }
      return user
    }
  }
  fastify.decorate('users', users)
}, { name: 'users-client', dependencies: ['config', 'token-service'] })
