/**
 * Passkeys (docs/mfa.md#passkeys): registration for a signed-in user, sign-in with a passkey alone
 * (a discoverable credential: the user is found from its user handle), and the options for a
 * passkey as the second step of a password login or as a step-up.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { tokenFailureLimit } from '../../limits/token-failure-limit.js'
import { startSession } from '../../auth/login-flow.js'
import { loginAnswer } from '../../auth/login-answer.js'
import { newFingerprint } from '../../dpop/fingerprint.js'
import { countedCheck } from '../../mfa/counted-proof.js'
import { newRecoveryCodes } from '../../mfa/recovery-codes.js'
import { requireSecondFactor, usedSecondFactor } from '../../mfa/step-up.js'
import {
  authenticationOptions,
  registrationOptions,
  takeChallenge,
  userHandleOf,
  verifyAssertion,
  verifyRegistration
} from '../../mfa/webauthn.js'
import {
  AuthenticationResponseSchema,
  CreationOptionsSchema,
  LoginResponseSchema,
  problems,
  RegistrationResponseSchema,
  RequestOptionsSchema
} from '../../schemas.js'
import { nowSeconds } from '../../tokens/token-service.js'
import type { Mfa } from '../../plugins/app/mfa.js'
import { hasActiveFactor } from './mfa.js'

const webauthnRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const mfa = fastify.mfa as Mfa
  const { limits } = fastify.config
  const tags = ['mfa']
  const bearer = { security: [{ bearer: [] }], tags }
  const authenticated = tokenFailureLimit(fastify).guarded(fastify.authenticate)
  const userOnly = async (request: { auth: { act?: unknown } | null }): Promise<void> => {
    if (request.auth?.act !== undefined) throw gatewayError('forbidden', 'a delegated token cannot manage second factors')
  }
  const loginLimit = { rateLimit: fastify.ipLimit('login', limits.loginPerIp) }

  fastify.post('/auth/mfa/webauthn/register/options', {
    preHandler: [authenticated, userOnly],
    schema: {
      ...bearer,
      summary: 'Start registering a passkey: PublicKeyCredentialCreationOptionsJSON '
        + '(a discoverable credential; the caller\'s passkeys excluded)',
      response: { 200: CreationOptionsSchema, ...problems(401, 403, 429, 502, 503, 504) }
    }
  }, async (request) => {
    const claims = request.auth!
    const factors = await mfa.factors.list(claims.sub, request.id)
    // As for TOTP: a user who has a factor adds another only from a session that used one.
    if (hasActiveFactor(factors) && !usedSecondFactor(claims)) requireSecondFactor(claims)
    return await registrationOptions(request, { userId: claims.sub, username: claims.username }, factors)
  })

  fastify.post('/auth/mfa/webauthn/register/verify', {
    preHandler: [authenticated, userOnly],
    schema: {
      ...bearer,
      summary: 'Finish registering a passkey: the RegistrationResponseJSON as the body; '
        + 'recovery codes when the user had none (shown this once)',
      body: RegistrationResponseSchema,
      response: {
        200: Type.Object({
          factor_id: Type.String(),
          recovery_codes: Type.Optional(Type.Array(Type.String(), { minItems: 10, maxItems: 10 }))
        }),
        ...problems(400, 401, 403, 429, 502, 503, 504)
      }
    }
  }, async (request) => {
    const claims = request.auth!
    const factors = await mfa.factors.list(claims.sub, request.id)
    if (hasActiveFactor(factors) && !usedSecondFactor(claims)) requireSecondFactor(claims)
    const factor = await verifyRegistration(request, claims.sub, factors, request.body)
    if (typeof factor === 'string') {
      securityEvent(request, 'mfa_failed', { user_id: claims.sub, method: 'hwk', reason: factor, registration: true })
      throw gatewayError('passkey_invalid')
    }
    await mfa.factors.save(claims.sub, factor, request.id)
    // Recovery codes back up every factor; a user whose first factor is a passkey gets them now.
    let recoveryCodes: string[] | undefined
    if (!factors.some((f) => f.type === 'recovery_codes')) {
      const { codes, factor: recovery } = newRecoveryCodes()
      await mfa.factors.save(claims.sub, recovery, request.id)
      recoveryCodes = codes
    }
    securityEvent(request, 'mfa_enrolled', { user_id: claims.sub, factor_id: factor.id, type: 'webauthn' })
    return { factor_id: factor.id, ...(recoveryCodes !== undefined ? { recovery_codes: recoveryCodes } : {}) }
  })

  fastify.post('/auth/webauthn/options', {
    config: loginLimit,
    schema: {
      tags,
      summary: 'PublicKeyCredentialRequestOptionsJSON: for a sign-in with a passkey alone ({} or {"cookie": true}), '
        + 'for the second step of a password login ({"mfa_token"}: the user\'s passkeys), or for a step-up ({})',
      body: Type.Object({
        cookie: Type.Optional(Type.Boolean({ description: 'The sign-in sets the refresh token as an HttpOnly cookie' })),
        mfa_token: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'The mfa_token of a 403 mfa_required' }))
      }),
      response: { 200: RequestOptionsSchema, ...problems(400, 401, 429, 502, 503, 504) }
    }
  }, async (request) => {
    const { cookie, mfa_token: token } = request.body
    if (token === undefined) return await authenticationOptions(request, { purpose: 'assert', cookie: cookie === true })
    if (cookie !== undefined) throw gatewayError('invalid_request', 'the cookie flag of a second step is the login\'s')
    // Reading the token counts no try: the try is counted when the assertion comes to /auth/mfa/verify.
    const pending = await mfa.state.peekToken(token)
    if (pending === null) throw gatewayError('mfa_token_invalid')
    const factors = await mfa.factors.list(pending.userId, request.id)
    if (!factors.some((f) => f.type === 'webauthn')) throw gatewayError('invalid_request', 'the user has no passkey')
    return await authenticationOptions(request, { purpose: 'assert', userId: pending.userId }, factors)
  })

  fastify.post('/auth/webauthn/verify', {
    config: loginLimit,
    schema: {
      tags,
      summary: 'Sign in with a passkey alone: the AuthenticationResponseJSON as the body; answers as /auth/login',
      body: AuthenticationResponseSchema,
      response: { 200: LoginResponseSchema, ...problems(400, 401, 429, 502, 503, 504) }
    }
  }, async (request, reply) => {
    // A DPoP proof is checked first: a refused proof costs no challenge and no try.
    const jkt = await fastify.dpop.tokenProof(request, { required: fastify.config.dpop.required })
    const refuse = (reason: string, userId?: string): never => {
      const who = userId !== undefined ? { user_id: userId } : {}
      securityEvent(request, 'mfa_failed', { method: 'hwk', reason, passkey_only: true, ...who })
      throw gatewayError('passkey_invalid')
    }
    const taken = await takeChallenge(request, request.body)
    if (taken === null || taken.issued.purpose !== 'assert' || taken.issued.userId !== undefined) return refuse('challenge')
    const userId = userHandleOf(request.body)
    if (userId === null) return refuse('user_handle')
    const checkedAt = Date.now()
    const user = await fastify.users.lookupUser(userId, request.id)
    if (user === null || !user.active) return refuse('unknown_user', userId)
    const factors = await mfa.factors.list(userId, request.id)
    const { body } = request
    await countedCheck(
      request,
      { userId, username: user.username },
      async () => await verifyAssertion(request, userId, factors, body, taken.challenge, true) === null ? true : null,
      'passkey_invalid'
    )
    const cookie = taken.issued.cookie === true
    const fingerprint = cookie ? newFingerprint() : undefined
    const bound = { binding: { jkt, fgp: fingerprint?.hash }, fingerprint }
    const amr = ['hwk', 'mfa']
    const identity = { userId, username: user.username, roles: user.roles }
    const session = await startSession(request, identity, checkedAt, bound.binding, { amr, authTime: nowSeconds() })
    securityEvent(request, 'mfa_succeeded', { user_id: userId, method: 'hwk', session_id: session.sessionId, passkey_only: true })
    securityEvent(request, 'login_succeeded', { user_id: userId, session_id: session.sessionId, amr })
    return loginAnswer(reply, session, cookie, bound)
  })
}

export default webauthnRoutes
