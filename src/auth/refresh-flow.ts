/**
 * Refresh-token rotation, shared by `POST /auth/refresh` and `POST /api/token/refresh/`. The
 * rotation, the reuse grace window and reuse detection happen in one atomic Redis script
 * (src/sessions/scripts/rotate-refresh.ts); a refresh token of the old Django service is exchanged
 * once for a new session during the cut-over window (./legacy-exchange.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { gatewayError } from '../errors.js'
import { applyWindowCount } from '../limits/limit-headers.js'
import { securityEvent } from '../lib/security-events.js'
import type { TokenFailureLimit } from '../limits/token-failure-limit.js'
import { exchangeLegacyRefresh, looksLikeLegacyToken } from './legacy-exchange.js'
import { proofError } from '../dpop/dpop-errors.js'
import type { RefreshClaims } from '../tokens/claims.js'
import type { AuthContext } from '../tokens/token-service.js'

/**
 * The login's `amr` and `auth_time`, carried by every refresh token of the session. A refresh
 * token from before the claims existed stands for a password login at its own issue time.
 */
function authContextOf (claims: RefreshClaims): AuthContext {
  return { amr: claims.amr ?? ['pwd'], authTime: claims.auth_time ?? claims.iat }
}

export interface RefreshedTokens {
  access: string
  refresh: string
  /** The tokens are DPoP-bound. */
  bound: boolean
}

/**
 * What the refresh request brings: the thumbprint of its DPoP proof's key, and a new fingerprint
 * hash for the access token (cookie mode). A bound refresh token refreshes only with a proof of
 * its key; an unbound one gets no key bound on the way (the session started as a bearer one).
 */
export interface RefreshBinding { jkt?: string | undefined, fingerprintOf?: ((expected: string | undefined) => string) | undefined }

/**
 * Rotates `presented` (or exchanges a legacy token) and returns the new pair. Sets the
 * x-ratelimit-* headers of the session's refresh limit on `reply`. Every refusal (401) counts
 * against the client IP in `failures` (429 past its limit).
 * @throws GatewayError `token_invalid`, `token_expired`, `token_revoked`, `token_reused`, `rate_limited`
 */
export async function refreshTokens (
  request: FastifyRequest,
  reply: FastifyReply,
  presented: string,
  failures: TokenFailureLimit,
  binding: RefreshBinding = {}
): Promise<RefreshedTokens> {
  try {
    return await rotateOrExchange(request, reply, presented, binding)
  } catch (err) {
    return await failures.count(request, reply, err)
  }
}

async function rotateOrExchange (
  request: FastifyRequest,
  reply: FastifyReply,
  presented: string,
  binding: RefreshBinding
): Promise<RefreshedTokens> {
  if (looksLikeLegacyToken(presented)) return await exchangeLegacyRefresh(request, presented, binding.jkt)
  const { tokens, sessions, config } = request.server

  const claims = await tokens.verify(presented, 'refresh')
  const jkt = claims.cnf?.jkt
  if (jkt !== undefined && binding.jkt !== jkt) {
    // A stolen bound refresh token without its key: refused, and nothing is revoked (the owner's copy still works).
    securityEvent(
      request,
      'token_unbound_use',
      { user_id: claims.sub, session_id: claims.sid, reason: binding.jkt === undefined ? 'no_proof' : 'other_key' }
    )
    throw proofError(
      'invalid_dpop_proof',
      binding.jkt === undefined
        ? 'the refresh token is DPoP-bound: a proof of its key is required'
        : 'the proof is not signed by the refresh token\'s key',
      'token'
    )
  }
  const fgp = binding.fingerprintOf?.(claims.fgp)
  const auth = authContextOf(claims)
  const next = await tokens.signRefresh(claims.sub, claims.sid, { jkt, fgp }, auth)
  // The presented token is the key that keeps its successor encrypted in Redis (docs/tokens-and-sessions.md).
  const result = await sessions.rotate(claims.sub, claims.sid, claims.jti, next, presented)
  if (result.outcome === 'missing') throw gatewayError('token_revoked')

  if (result.outcome === 'reused') {
    securityEvent(request, 'token_reuse_detected', { user_id: claims.sub, session_id: claims.sid })
    securityEvent(request, 'session_revoked', { user_id: claims.sub, session_id: claims.sid, reason: 'token_reused' })
    throw gatewayError('token_reused', 'the refresh token was already used; the session is revoked')
  }

  const limited = applyWindowCount(reply, { limit: config.limits.refreshPerSession, count: result.count, ttlMs: result.ttlMs })
  if (result.outcome === 'limited') {
    securityEvent(request, 'rate_limited', { user_id: claims.sub, session_id: claims.sid, limit: 'refresh' })
    throw limited!
  }

  const access = await tokens.signAccess(
    { userId: claims.sub, username: result.username, roles: result.roles },
    claims.sid,
    { jkt, fgp },
    auth
  )
  securityEvent(request, 'token_refreshed', { user_id: claims.sub, session_id: claims.sid, grace: result.outcome === 'grace' })
  return { access: access.token, refresh: result.refresh, bound: jkt !== undefined }
}
