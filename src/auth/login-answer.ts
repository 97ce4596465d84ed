/** The answer of a finished login (`POST /auth/login`, `/auth/mfa/verify`): tokens, and the refresh token as a cookie when asked. */
import type { FastifyReply } from 'fastify'
import { setRefreshCookie } from '../lib/refresh-cookie.js'
import type { StartedSession } from './login-flow.js'

export function loginAnswer (reply: FastifyReply, session: StartedSession, cookie: boolean) {
  const { jwt, cookieSecure } = reply.server.config
  const { identity, access, refresh } = session
  if (cookie) setRefreshCookie(reply, refresh.token, jwt.refreshTtl, cookieSecure)
  return {
    access: access.token,
    ...(cookie ? {} : { refresh: refresh.token }),
    token_type: 'Bearer' as const,
    expires_in: jwt.accessTtl,
    refresh_expires_in: jwt.refreshTtl,
    user: { id: identity.userId, username: identity.username, roles: identity.roles }
  }
}
