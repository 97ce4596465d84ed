/** POST /auth/login: credentials in, a new session with an access and a refresh token out (4.1). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { setRefreshCookie } from '../../lib/refresh-cookie.js'
import { LoginBodySchema, LoginResponseSchema, problems } from '../../schemas.js'
import { newId } from '../../tokens/token-service.js'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jwt, cookieSecure } = fastify.config

  fastify.post('/auth/login', {
    schema: {
      tags: ['auth'],
      summary: 'Log in with username and password',
      body: LoginBodySchema,
      response: { 200: LoginResponseSchema, ...problems(400, 401, 429, 502, 503, 504) }
    }
  }, async (request, reply) => {
    const { username, password, cookie } = request.body
    const identity = await fastify.users.checkCredentials(username, password, request.id)
    if (identity === null) {
      securityEvent(request, 'login_failed')
      throw gatewayError('invalid_credentials')
    }
    const sessionId = newId()
    const [access, refresh] = await Promise.all([
      fastify.tokens.signAccess(identity, sessionId),
      fastify.tokens.signRefresh(identity.userId, sessionId)
    ])
    await fastify.sessions.create({
      ...identity,
      sessionId,
      refreshJti: refresh.jti,
      ip: request.ip,
      userAgent: request.headers['user-agent'] ?? ''
    })
    securityEvent(request, 'login_succeeded', { user_id: identity.userId, session_id: sessionId })
    if (cookie === true) setRefreshCookie(reply, refresh.token, jwt.refreshTtl, cookieSecure)
    return {
      access: access.token,
      ...(cookie === true ? {} : { refresh: refresh.token }),
      token_type: 'Bearer' as const,
      expires_in: jwt.accessTtl,
      refresh_expires_in: jwt.refreshTtl,
      user: { id: identity.userId, username: identity.username, roles: identity.roles }
    }
  })
}

export default login
