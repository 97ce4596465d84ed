/** POST /auth/login: credentials in, a new session with an access and a refresh token out (4.1). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { logIn } from '../../auth/login-flow.js'
import { loginAnswer } from '../../auth/login-answer.js'
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
    const session = await logIn(request, username, password, { cookie: cookie === true })
    return loginAnswer(reply, session, cookie === true)
  })
}

export default login
