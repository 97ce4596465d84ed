/**
 * The answer of a finished login (`POST /auth/login`, `/auth/mfa/verify`): tokens, the refresh
 * token as a cookie when asked, and the fingerprint cookie of a cookie-mode session (docs/dpop.md).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { setRefreshCookie } from '../lib/refresh-cookie.js'
import { newFingerprint, setFingerprintCookie, type Fingerprint } from '../dpop/fingerprint.js'
import type { TokenBinding } from '../tokens/token-service.js'
import type { StartedSession } from './login-flow.js'

/** What a new session's tokens are bound to, with the fingerprint to set as a cookie. */
export interface LoginBinding { binding: TokenBinding, fingerprint: Fingerprint | undefined }

/**
 * The binding of a login's tokens: the DPoP key of the request's proof (checked before anything
 * else, so a refused proof costs no attempt) and, in cookie mode, a new fingerprint.
 */
export async function loginBinding (request: FastifyRequest, cookie: boolean): Promise<LoginBinding> {
  const jkt = await request.server.dpop.tokenProof(request, { required: request.server.config.dpop.required })
  const fingerprint = cookie ? newFingerprint() : undefined
  return { binding: { jkt, fgp: fingerprint?.hash }, fingerprint }
}

export function loginAnswer (reply: FastifyReply, session: StartedSession, cookie: boolean, bound: LoginBinding) {
  const { jwt, cookieSecure } = reply.server.config
  const { identity, access, refresh } = session
  if (cookie) setRefreshCookie(reply, refresh.token, jwt.refreshTtl, cookieSecure)
  if (bound.fingerprint !== undefined) setFingerprintCookie(reply, bound.fingerprint, cookieSecure, jwt.refreshTtl)
  return {
    access: access.token,
    ...(cookie ? {} : { refresh: refresh.token }),
    token_type: bound.binding.jkt !== undefined ? 'DPoP' as const : 'Bearer' as const,
    expires_in: jwt.accessTtl,
    refresh_expires_in: jwt.refreshTtl,
    user: { id: identity.userId, username: identity.username, roles: identity.roles }
  }
}
