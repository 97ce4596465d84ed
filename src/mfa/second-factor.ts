/**
 * Checks one second-factor proof of a user against the factors in the identity backend: a TOTP
 * code, a recovery code, or a WebAuthn assertion. A success is written back to the backend (the
 * TOTP step, the recovery code's use, the passkey's counter) before it counts, and claimed in
 * Redis first so two requests with the same proof cannot both pass.
 */
import type { FastifyRequest } from 'fastify'
import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import { gatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import type { Factor, RecoveryFactor, TotpFactor } from './factors.js'
import { checkTotp } from './totp.js'
import { hashRecoveryCode } from './recovery-codes.js'
import { checkPasskeyAssertion } from './webauthn.js'

/** What a client sends for the second step; exactly one member. */
export interface FactorProof {
  code?: string | undefined
  recovery_code?: string | undefined
  webauthn?: AuthenticationResponseJSON | undefined
}

/** The RFC 8176 method of a passed proof. */
export type ProofMethod = 'otp' | 'hwk'

/** Seconds a used TOTP step stays claimed in Redis: past the drift window it is too old anyway. */
const STEP_CLAIM_SECONDS = 120
/** Seconds a used recovery code stays claimed in Redis (the backend has the lasting record). */
const CODE_CLAIM_SECONDS = 3600

/** Exactly one proof, else 400. */
export function oneProof (proof: FactorProof): void {
  const given = [proof.code, proof.recovery_code, proof.webauthn].filter((v) => v !== undefined).length
  if (given !== 1) throw gatewayError('invalid_request', 'give exactly one of code, recovery_code, webauthn')
}

/** The method of the proof when it is right (its use recorded), or null when it is wrong or used. */
export async function checkProof (
  request: FastifyRequest,
  userId: string,
  factors: Factor[],
  proof: FactorProof
): Promise<ProofMethod | null> {
  const { mfa } = request.server
  if (mfa === null) return null
  if (proof.code !== undefined) {
    for (const f of factors) {
      if (f.type !== 'totp' || f.status !== 'active') continue
      const step = await checkTotp(f.secret, proof.code, f.lastStep)
      if (step === null) continue
      if (!await mfa.state.claimOnce(userId, `totp:${f.id}:${step}`, STEP_CLAIM_SECONDS)) return null
      const used: TotpFactor = { ...f, lastStep: step }
      await mfa.factors.save(userId, used, request.id)
      return 'otp'
    }
    return null
  }
  if (proof.recovery_code !== undefined) {
    const recovery = factors.find((f): f is RecoveryFactor => f.type === 'recovery_codes')
    if (recovery === undefined || !factors.some((f) => f.status === 'active' && f.type !== 'recovery_codes')) return null
    const hash = hashRecoveryCode(proof.recovery_code)
    const index = recovery.codes.findIndex((c) => c.hash === hash && c.usedAt === null)
    if (index < 0) return null
    if (!await mfa.state.claimOnce(userId, `rc:${hash}`, CODE_CLAIM_SECONDS)) return null
    const codes = recovery.codes.map((c, i) => i === index ? { ...c, usedAt: new Date().toISOString() } : c)
    await mfa.factors.save(userId, { ...recovery, codes }, request.id)
    securityEvent(request, 'recovery_code_used', { user_id: userId, remaining: codes.filter((c) => c.usedAt === null).length })
    return 'otp'
  }
  if (proof.webauthn !== undefined) {
    return await checkPasskeyAssertion(request, userId, factors, proof.webauthn) ? 'hwk' : null
  }
  return null
}
