/** POST /auth/login: credentials in, a new session with an access and a refresh token out (docs/tokens-and-sessions.md). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { logIn } from '../../auth/login-flow.js'
import { loginAnswer, loginBinding } from '../../auth/login-answer.js'
import { LoginBodySchema, LoginResponseSchema, MfaRequiredSchema, problems } from '../../schemas.js'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  const { limits } = fastify.config

  fastify.post('/auth/login', {
    config: { rateLimit: fastify.ipLimit('login', limits.loginPerIp) },
    schema: {
      tags: ['auth'],
      summary: 'Log in with username and password',
      body: LoginBodySchema,
      response: { 200: LoginResponseSchema, ...problems(400, 401, 429, 502, 503, 504), 403: MfaRequiredSchema }
    }
  }, async (request, reply) => {
    const { username, password, cookie } = request.body
    // The proof is checked before the credentials: a refused proof costs no login attempt.
    const bound = await loginBinding(request, cookie === true)
    const session = await logIn(request, username, password, { cookie: cookie === true, binding: bound.binding })
    return loginAnswer(reply, session, cookie === true, bound)
  })
}

export default login
