/**
 * Second factors of the caller (docs/mfa.md): TOTP enrolment with recovery codes, the list, removal,
 * the second step of a login (`/auth/mfa/verify`) and step-up of a signed-in session.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { tokenFailureLimit } from '../../limits/token-failure-limit.js'
import { startSession } from '../../auth/login-flow.js'
import { loginAnswer, loginBinding } from '../../auth/login-answer.js'
import { countedProof } from '../../mfa/counted-proof.js'
import { describeFactor, type Factor, type TotpFactor } from '../../mfa/factors.js'
import { newRecoveryCodes } from '../../mfa/recovery-codes.js'
import { oneProof } from '../../mfa/second-factor.js'
import { requireFreshFactor, requireSecondFactor, usedSecondFactor } from '../../mfa/step-up.js'
import { checkTotp, newTotp } from '../../mfa/totp.js'
import { AuthenticationResponseSchema, LoginResponseSchema, NoContent, problems } from '../../schemas.js'
import { newId, nowSeconds } from '../../tokens/token-service.js'
import type { Mfa } from '../../plugins/app/mfa.js'

/** A second factor used within this many seconds is needed to remove one (and for an admin's reset). */
export const REMOVAL_MAX_AGE = 300

const ProofFields = {
  code: Type.Optional(Type.String({ minLength: 1, maxLength: 16, description: 'A TOTP code' })),
  recovery_code: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'One of the recovery codes' })),
  webauthn: Type.Optional(AuthenticationResponseSchema)
}
const FactorView = Type.Object({
  id: Type.String(),
  type: Type.Union([Type.Literal('totp'), Type.Literal('webauthn'), Type.Literal('recovery_codes')]),
  status: Type.Union([Type.Literal('pending'), Type.Literal('active')]),
  created_at: Type.String(),
  remaining: Type.Optional(Type.Integer({ description: 'Unused recovery codes' }))
})
export const FactorListSchema = Type.Object({ factors: Type.Array(FactorView) })

/** The factors that make a user "have a second factor" (recovery codes only back them up). */
export const hasActiveFactor = (factors: readonly Factor[]): boolean => factors.some((f) => f.status === 'active'
  && f.type !== 'recovery_codes')

const mfaRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const mfa = fastify.mfa as Mfa
  const { jwt, limits } = fastify.config
  const tags = ['mfa']
  const bearer = { security: [{ bearer: [] }], tags }
  const authenticated = tokenFailureLimit(fastify).guarded(fastify.authenticate)
  /** A user's own token, never a delegated one (a client acting for the user manages no factors). */
  const userOnly = async (request: { auth: { act?: unknown } | null }): Promise<void> => {
    if (request.auth?.act !== undefined) throw gatewayError('forbidden', 'a delegated token cannot manage second factors')
  }

  fastify.post('/auth/mfa/verify', {
    config: { rateLimit: fastify.ipLimit('login', limits.loginPerIp) },
    schema: {
      tags,
      summary: 'The second step of a login: the mfa_token of the 403 mfa_required and one proof; answers as /auth/login',
      body: Type.Object({ mfa_token: Type.String({ minLength: 1, maxLength: 128 }), ...ProofFields }),
      response: { 200: LoginResponseSchema, ...problems(400, 401, 429, 502, 503, 504) }
    }
  }, async (request, reply) => {
    const { mfa_token: token, ...proof } = request.body
    oneProof(proof)
    const pending = await mfa.state.tryToken(token)
    if (pending === null) {
      securityEvent(request, 'mfa_failed', { reason: 'mfa_token' })
      throw gatewayError('mfa_token_invalid')
    }
    // A DPoP proof is checked before the code: a refused proof costs no try.
    const bound = await loginBinding(request, pending.cookie)
    const user = { userId: pending.userId, username: pending.username }
    const factors = await mfa.factors.list(pending.userId, request.id)
    const method = await countedProof(request, user, factors, proof)
    // Single use: of two requests that both passed, one gets the session.
    if (!await mfa.state.consumeToken(token)) throw gatewayError('mfa_token_invalid')
    const identity = { userId: pending.userId, username: pending.username, roles: pending.roles }
    const session = await startSession(
      request,
      identity,
      pending.checkedAt,
      bound.binding,
      { amr: ['pwd', method, 'mfa'], authTime: nowSeconds() }
    )
    securityEvent(request, 'mfa_succeeded', { user_id: pending.userId, method, session_id: session.sessionId })
    securityEvent(request, 'login_succeeded', { user_id: pending.userId, session_id: session.sessionId, amr: ['pwd', method, 'mfa'] })
    return loginAnswer(reply, session, pending.cookie, bound)
  })

  fastify.post('/auth/mfa/step-up', {
    preHandler: [authenticated, userOnly],
    schema: {
      ...bearer,
      summary: 'A second factor for a signed-in session: a new access token with amr mfa and auth_time now (RFC 9470 step-up)',
      body: Type.Object(ProofFields),
      response: {
        200: Type.Object({
          access: Type.String(),
          token_type: Type.Union([Type.Literal('Bearer'), Type.Literal('DPoP')]),
          expires_in: Type.Integer()
        }),
        ...problems(400, 401, 403, 429, 502, 503, 504)
      }
    }
  }, async (request) => {
    oneProof(request.body)
    const claims = request.auth!
    const factors = await mfa.factors.list(claims.sub, request.id)
    const method = await countedProof(request, { userId: claims.sub, username: claims.username }, factors, request.body)
    const amr = [...new Set([...(claims.amr ?? ['pwd']), method, 'mfa'])]
    const access = await fastify.tokens.signAccess({ userId: claims.sub, username: claims.username, roles: claims.roles }, claims.sid,
      { jkt: claims.cnf?.jkt, fgp: claims.fgp }, { amr, authTime: nowSeconds() })
    securityEvent(request, 'mfa_succeeded', { user_id: claims.sub, method, session_id: claims.sid, step_up: true })
    return {
      access: access.token,
      token_type: claims.cnf?.jkt !== undefined ? 'DPoP' as const : 'Bearer' as const,
      expires_in: jwt.accessTtl
    }
  })

  fastify.get('/auth/mfa', {
    preHandler: [authenticated, userOnly],
    schema: {
      ...bearer,
      summary: "The caller's second factors (never a secret)",
      response: { 200: FactorListSchema, ...problems(401, 403, 429, 502, 503, 504) }
    }
  }, async (request) => {
    const factors = await mfa.factors.list(request.auth!.sub, request.id)
    return { factors: factors.map(describeFactor) }
  })

  fastify.post('/auth/mfa/totp', {
    preHandler: [authenticated, userOnly],
    schema: {
      ...bearer,
      summary: 'Start a TOTP enrolment: a new secret, its otpauth URI and QR code (SVG); active after /auth/mfa/totp/confirm',
      response: {
        200: Type.Object({ factor_id: Type.String(), secret: Type.String(), otpauth_uri: Type.String(), qr_svg: Type.String() }),
        ...problems(401, 403, 429, 502, 503, 504)
      }
    }
  }, async (request) => {
    const claims = request.auth!
    const factors = await mfa.factors.list(claims.sub, request.id)
    // Another factor for a user who has one takes a session that used one: a stolen password-only token adds none.
    if (hasActiveFactor(factors) && !usedSecondFactor(claims)) requireSecondFactor(claims)
    // An enrolment never confirmed is replaced, so abandoned secrets do not pile up.
    for (const f of factors) if (f.type === 'totp' && f.status === 'pending') await mfa.factors.remove(claims.sub, f.id, request.id)
    const totp = await newTotp(jwt.issuer, claims.username)
    const factor: TotpFactor = {
      id: newId(),
      type: 'totp',
      status: 'pending',
      createdAt: new Date().toISOString(),
      secret: totp.secret,
      lastStep: 0
    }
    await mfa.factors.save(claims.sub, factor, request.id)
    return { factor_id: factor.id, secret: totp.secret, otpauth_uri: totp.uri, qr_svg: totp.qrSvg }
  })

  fastify.post('/auth/mfa/totp/confirm', {
    preHandler: [authenticated, userOnly],
    schema: {
      ...bearer,
      summary: 'Activate a TOTP enrolment with a code from the app: 10 recovery codes, shown this once',
      body: Type.Object({ factor_id: Type.String({ minLength: 1, maxLength: 64 }), code: Type.String({ minLength: 1, maxLength: 16 }) }),
      response: {
        200: Type.Object({ recovery_codes: Type.Array(Type.String(), { minItems: 10, maxItems: 10 }) }),
        ...problems(400, 401, 403, 404, 429, 502, 503, 504)
      }
    }
  }, async (request) => {
    const claims = request.auth!
    const factors = await mfa.factors.list(claims.sub, request.id)
    const factor = factors.find((f): f is TotpFactor => f.id === request.body.factor_id && f.type === 'totp' && f.status === 'pending')
    if (factor === undefined) throw gatewayError('not_found', 'no TOTP enrolment of that id is waiting for confirmation')
    const step = await checkTotp(factor.secret, request.body.code, 0)
    if (step === null || !await mfa.state.claimOnce(claims.sub, `totp:${factor.id}:${step}`, 120)) throw gatewayError('mfa_code_invalid')
    await mfa.factors.save(claims.sub, { ...factor, status: 'active', lastStep: step }, request.id)
    const { codes, factor: recovery } = newRecoveryCodes()
    await mfa.factors.save(claims.sub, recovery, request.id)
    securityEvent(request, 'mfa_enrolled', { user_id: claims.sub, factor_id: factor.id, type: 'totp' })
    return { recovery_codes: codes }
  })

  fastify.delete('/auth/mfa/:factor_id', {
    preHandler: [authenticated, userOnly],
    schema: {
      ...bearer,
      summary: 'Remove one of the caller\'s factors; needs a second factor used within the last 5 minutes (RFC 9470 challenge otherwise)',
      params: Type.Object({ factor_id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }),
      response: { 204: NoContent, ...problems(400, 401, 403, 404, 429, 502, 503, 504) }
    }
  }, async (request, reply) => {
    const claims = request.auth!
    const factors = await mfa.factors.list(claims.sub, request.id)
    const factor = factors.find((f) => f.id === request.params.factor_id)
    if (factor === undefined) throw gatewayError('not_found')
    // An enrolment never confirmed protects nothing yet: it goes without a step-up.
    if (factor.status === 'active') requireFreshFactor(claims, REMOVAL_MAX_AGE)
    await mfa.factors.remove(claims.sub, factor.id, request.id)
    const left = factors.filter((f) => f.id !== factor.id)
    // Recovery codes back up a factor: with none left, they go too.
    const recovery = left.find((f) => f.type === 'recovery_codes')
    if (recovery !== undefined && !hasActiveFactor(left)) await mfa.factors.remove(claims.sub, recovery.id, request.id)
    if (factor.status === 'active') securityEvent(request, 'mfa_removed', { user_id: claims.sub, factor_id: factor.id, type: factor.type })
    return reply.code(204).send(null)
  })
}

export default mfaRoutes
