/**
 * POST /auth/refresh: rotates a refresh token (4.2). The rotation, the reuse grace window and
 * reuse detection happen in one atomic Redis script: src/sessions/scripts/rotate-refresh.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { gatewayError } from '../../errors.js'
import { applyWindowCount } from '../../limits/limit-headers.js'
import { securityEvent } from '../../lib/security-events.js'
import { assertTrustedOrigin, REFRESH_COOKIE, setRefreshCookie, clearRefreshCookie } from '../../lib/refresh-cookie.js'
import { emptyBodyAsObject } from '../../lib/optional-body.js'
import { RefreshBodySchema, RefreshResponseSchema, problems } from '../../schemas.js'
import { acceptEmptyJsonBody } from '../../lib/lenient-json.js'
import { tokenFailureLimit } from '../../limits/token-failure-limit.js'

const refresh: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jwt, cookieSecure, corsOrigins, limits } = fastify.config
  const failures = tokenFailureLimit(fastify)
  // Cookie mode with `Content-Type: application/json` and no body is a cookie refresh, not a 400.
  acceptEmptyJsonBody(fastify)

  fastify.post('/auth/refresh', {
    // No body at all (cookie mode) is `{}`.
    preValidation: emptyBodyAsObject,
    schema: {
      tags: ['auth'],
      summary: 'Exchange a refresh token for a new access and refresh token',
      description: 'The refresh token comes in the body, or (no body) in the refresh_token cookie with a trusted Origin.',
      body: RefreshBodySchema,
      response: { 200: RefreshResponseSchema, ...problems(400, 401, 403, 429, 503) }
    }
  }, async (request, reply) => {
    const fromBody = request.body?.refresh
    const fromCookie = fromBody === undefined ? request.cookies[REFRESH_COOKIE] : undefined
    if (fromCookie !== undefined) assertTrustedOrigin(request, corsOrigins)
    const presented = fromBody ?? fromCookie
    if (presented === undefined) throw gatewayError('token_missing', 'no refresh token in the body or the cookie')

    // Refused tokens count per client IP (429 past PUBLIC_IP_LIMIT).
    const claims = await fastify.tokens.verify(presented, 'refresh').catch((err: unknown) => failures.count(request, reply, err))
    const next = await fastify.tokens.signRefresh(claims.sub, claims.sid)
    const result = await fastify.sessions.rotate(claims.sub, claims.sid, claims.jti, next, presented)
    if (result.outcome === 'missing') return await failures.count(request, reply, gatewayError('token_revoked'))

    if (result.outcome === 'reused') {
      securityEvent(request, 'token_reuse_detected', { user_id: claims.sub, session_id: claims.sid })
      securityEvent(request, 'session_revoked', { user_id: claims.sub, session_id: claims.sid, reason: 'token_reused' })
      if (fromCookie !== undefined) clearRefreshCookie(reply, cookieSecure)
      return await failures.count(request, reply, gatewayError('token_reused', 'the refresh token was already used; the session is revoked'))
    }

    const limited = applyWindowCount(reply, { limit: limits.refreshPerSession, count: result.count, ttlMs: result.ttlMs })
    if (result.outcome === 'limited') {
      securityEvent(request, 'rate_limited', { user_id: claims.sub, session_id: claims.sid, limit: 'refresh' })
      throw limited!
    }

    const access = await fastify.tokens.signAccess({ userId: claims.sub, username: result.username, roles: result.roles }, claims.sid)
    securityEvent(request, 'token_refreshed', { user_id: claims.sub, session_id: claims.sid, grace: result.outcome === 'grace' })
    if (fromCookie !== undefined) setRefreshCookie(reply, result.refresh, jwt.refreshTtl, cookieSecure)
    return {
      access: access.token,
      ...(fromCookie !== undefined ? {} : { refresh: result.refresh }),
      token_type: 'Bearer' as const,
      expires_in: jwt.accessTtl,
      refresh_expires_in: jwt.refreshTtl
    }
  })
}

export default refresh
