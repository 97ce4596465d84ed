/**
 * Cut-over from a running Django service (docs/simplejwt-api.md): a refresh token that service issued
 * (HS256 with LEGACY_SIMPLEJWT_KEY) is exchanged once, until LEGACY_SIMPLEJWT_UNTIL, for a new
 * gateway session of the same user. Only the refresh paths call this: a legacy token is never
 * accepted as an access token (the token service accepts ES256 with a known kid only). A token
 * issued before the user's last password change, logout-all or admin revoke-all is refused.
 */
import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose'
import { gatewayError, type GatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import { Compile } from 'typebox/compile'
import { Id } from '../tokens/claims.js'
import { nowSeconds } from '../tokens/token-service.js'
import { startSession } from './login-flow.js'
import type { RefreshedTokens } from './refresh-flow.js'

const isId = Compile(Id)

/** Redis key remembering an exchanged legacy `jti` until that token's `exp`. */
export const legacyJtiKey = (jti: string): string => `gw:legacy-jti:${createHash('sha256').update(jti).digest('base64url')}`

/**
 * simplejwt's tokens carry `user_id` and no `sid`; the gateway's carry `sid`. Read without trusting
 * the token: it only chooses which verification applies, and each refuses what it does not accept.
 */
export function looksLikeLegacyToken (token: string): boolean {
  try {
    const payload = decodeJwt(token)
    return payload.user_id !== undefined && payload.sid === undefined
  } catch {
    return false
  }
}

function refuse (request: FastifyRequest, reason: string, error: GatewayError = gatewayError('token_invalid'), userId?: string): never {
  securityEvent(request, 'legacy_token_refused', { reason, ...(userId !== undefined ? { user_id: userId } : {}) })
  throw error
}

export async function exchangeLegacyRefresh (request: FastifyRequest, token: string, jkt?: string): Promise<RefreshedTokens> {
  const { config, redis, users } = request.server
  const legacy = config.legacy
  if (legacy === null) refuse(request, 'not_enabled')
  if (Date.now() >= legacy.untilMs) refuse(request, 'window_closed')

  let alg: unknown
  try {
    alg = decodeProtectedHeader(token).alg
  } catch {
    refuse(request, 'malformed')
  }
  if (alg !== 'HS256') refuse(request, 'algorithm')

  let payload
  try {
    ({ payload } = await jwtVerify(token, legacy.key,
      { algorithms: ['HS256'], requiredClaims: ['exp', 'iat', 'jti', 'token_type', 'user_id'] }))
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) refuse(request, 'expired', gatewayError('token_expired'))
    refuse(request, 'signature')
  }
  if (payload.token_type !== 'refresh') refuse(request, 'token_type')
  const userId = typeof payload.user_id === 'number' || typeof payload.user_id === 'string' ? String(payload.user_id) : ''
  if (!isId.Check(userId) || typeof payload.jti !== 'string' || typeof payload.exp !== 'number' || typeof payload.iat !== 'number') refuse(
    request, 'claims')

  // Issued before the user's last password change, logout-all or admin revoke-all: those ended
  // every session the user had, and this token stands for one more.
  const cutoff = await request.server.sessions.legacyCutoff(userId)
  if (cutoff !== null && payload.iat * 1000 < cutoff) refuse(request, 'revoked', undefined, userId)

  const checkedAt = Date.now()
  const user = await users.lookupUser(userId, request.id)
  if (user === null) refuse(request, 'unknown_user', undefined, userId)
  if (!user.active) refuse(request, 'inactive_user', undefined, userId)

  // Once only: the jti is remembered until the token would have expired anyway (SET NX EX, one round trip).
  const ttl = Math.max(1, payload.exp - nowSeconds())
  const first = await orStoreUnavailable(redis.set(legacyJtiKey(payload.jti), '1', 'EX', ttl, 'NX'))
  if (first !== 'OK') refuse(request, 'already_exchanged', undefined, userId)

  // With a DPoP proof, the new session is bound to its key as a login's would be.
  const session = await startSession(request, { userId: user.id, username: user.username, roles: user.roles }, checkedAt, { jkt })
  securityEvent(request, 'legacy_token_exchanged', { user_id: user.id, session_id: session.sessionId })
  return { access: session.access.token, refresh: session.refresh.token, bound: jkt !== undefined }
}
