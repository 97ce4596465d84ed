/** Logout and logout-all of an authenticated caller, shared by /auth/logout(-all) and /api/logout(-all)/. */
import type { FastifyRequest } from 'fastify'
import { securityEvent } from '../lib/security-events.js'

/**
 * Revokes the caller's session, and the session of `presented` (a refresh token sent along) when
 * it is another session of the same user.
 */
export async function logOut (request: FastifyRequest, presented: string | undefined): Promise<void> {
  const { tokens, sessions } = request.server
  const auth = request.auth!
  await sessions.revoke(auth.sub, auth.sid)
  securityEvent(request, 'session_revoked', { user_id: auth.sub, session_id: auth.sid, reason: 'logout' })
  if (presented !== undefined) {
    const claims = await tokens.verify(presented, 'refresh').catch(() => null)
    if (claims !== null && claims.sub === auth.sub && claims.sid !== auth.sid && await sessions.revoke(claims.sub, claims.sid)) {
      securityEvent(request, 'session_revoked', { user_id: auth.sub, session_id: claims.sid, reason: 'logout' })
    }
  }
}

/** Revokes every session of the caller. */
export async function logOutAll (request: FastifyRequest): Promise<void> {
  const auth = request.auth!
  const revoked = await request.server.sessions.revokeAll(auth.sub)
  securityEvent(request, 'logout_all', { user_id: auth.sub, sessions: revoked })
}
