/** POST /auth/login: credentials in, a new session with an access and a refresh token out (docs/tokens-and-sessions.md). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { logIn } from '../../auth/login-flow.js'
import { setRefreshCookie } from '../../lib/refresh-cookie.js'
import { LoginBodySchema, LoginResponseSchema, problems } from '../../schemas.js'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jwt, cookieSecure, limits } = fastify.config

  fastify.post('/auth/login', {
    config: { rateLimit: fastify.ipLimit('login', limits.loginPerIp) },
    schema: {
      tags: ['auth'],
      summary: 'Log in with username and password',
      body: LoginBodySchema,
      response: { 200: LoginResponseSchema, ...problems(400, 401, 429, 502, 503, 504) }
    }
  }, async (request, reply) => {
    const { username, password, cookie } = request.body
    const { identity, access, refresh } = await logIn(request, username, password)
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
