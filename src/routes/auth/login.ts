/** POST /auth/login: credentials in, a new session with an access and a refresh token out (docs/tokens-and-sessions.md). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { logIn } from '../../auth/login-flow.js'
import { setRefreshCookie } from '../../lib/refresh-cookie.js'
import { newFingerprint, setFingerprintCookie } from '../../dpop/fingerprint.js'
import { LoginBodySchema, LoginResponseSchema, problems } from '../../schemas.js'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jwt, cookieSecure, limits, dpop } = fastify.config

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
    // The proof is checked before the credentials: a refused proof costs no login attempt.
    const jkt = await fastify.dpop.tokenProof(request, { required: dpop.required })
    // Cookie mode: the access token is good only together with the fingerprint cookie.
    const fingerprint = cookie === true ? newFingerprint() : undefined
    const { identity, access, refresh } = await logIn(request, username, password, { jkt, fgp: fingerprint?.hash })
    if (cookie === true) setRefreshCookie(reply, refresh.token, jwt.refreshTtl, cookieSecure)
    if (fingerprint !== undefined) setFingerprintCookie(reply, fingerprint, cookieSecure, jwt.refreshTtl)
    return {
      access: access.token,
      ...(cookie === true ? {} : { refresh: refresh.token }),
      token_type: jkt !== undefined ? 'DPoP' as const : 'Bearer' as const,
      expires_in: jwt.accessTtl,
      refresh_expires_in: jwt.refreshTtl,
      user: { id: identity.userId, username: identity.username, roles: identity.roles }
    }
  })
}

export default login
