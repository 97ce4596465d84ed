/**
 * POST /auth/refresh: rotates a refresh token (docs/tokens-and-sessions.md), or exchanges a refresh token of the old
 * Django service during the cut-over (docs/simplejwt-api.md); the flow is shared: src/auth/refresh-flow.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { gatewayError } from '../../errors.js'
import { refreshTokens } from '../../auth/refresh-flow.js'
import { assertTrustedOrigin, REFRESH_COOKIE, setRefreshCookie, clearRefreshCookie } from '../../lib/refresh-cookie.js'
import { emptyBodyAsObject } from '../../lib/optional-body.js'
import { RefreshBodySchema, RefreshResponseSchema, problems } from '../../schemas.js'
import { acceptEmptyJsonBody } from '../../lib/lenient-json.js'
import { tokenFailureLimit } from '../../limits/token-failure-limit.js'
import { refreshFingerprint, setFingerprintCookie, type Fingerprint } from '../../dpop/fingerprint.js'

const refresh: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jwt, cookieSecure, corsOrigins, dpop } = fastify.config
  // Refused tokens count per client IP (429 past PUBLIC_IP_LIMIT).
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

    const jkt = await fastify.dpop.tokenProof(request, { required: dpop.required })
    // Cookie mode: the session's fingerprint (a new one when its cookie is gone), set again only on success.
    let fingerprint: Fingerprint | undefined
    const fingerprintOf = fromCookie !== undefined
      ? (expected: string | undefined) => { fingerprint = refreshFingerprint(request, cookieSecure, expected); return fingerprint.hash }
      : undefined
    let next
    try {
      next = await refreshTokens(request, reply, presented, failures, { jkt, fingerprintOf })
    } catch (err) {
      // Reuse revoked the session: the cookie holding its token is useless now.
      if (fromCookie !== undefined && (err as { code?: unknown }).code === 'token_reused') clearRefreshCookie(reply, cookieSecure)
      throw err
    }
    if (fromCookie !== undefined) setRefreshCookie(reply, next.refresh, jwt.refreshTtl, cookieSecure)
    if (fingerprint !== undefined) setFingerprintCookie(reply, fingerprint, cookieSecure, jwt.refreshTtl)
    return {
      access: next.access,
      ...(fromCookie !== undefined ? {} : { refresh: next.refresh }),
      token_type: next.bound ? 'DPoP' as const : 'Bearer' as const,
      expires_in: jwt.accessTtl,
      refresh_expires_in: jwt.refreshTtl
    }
  })
}

export default refresh
