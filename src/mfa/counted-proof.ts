/**
 * A second-factor proof checked under the login lockout: a wrong code counts as a failed login of
 * the (username, client IP) pair, so guessing codes is as slow as guessing passwords.
 */
import type { FastifyRequest } from 'fastify'
import { gatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import { clientBucket } from '../limits/client-ip.js'
import type { Factor } from './factors.js'
import { checkProof, type FactorProof, type ProofMethod } from './second-factor.js'

/**
 * @throws GatewayError `account_locked`, `mfa_code_invalid`, and the backend's and store's errors
 */
export async function countedProof (
  request: FastifyRequest,
  user: { userId: string, username: string },
  factors: Factor[],
  proof: FactorProof
): Promise<ProofMethod> {
  const { lockout } = request.server
  const reservation = await lockout.reserve(user.username, clientBucket(request.ip))
  if (reservation.locked) {
    securityEvent(request, 'account_locked', { user_id: user.userId, retry_after: reservation.retryAfterSeconds })
    throw gatewayError(
      'account_locked',
      `too many failed attempts; retry in ${reservation.retryAfterSeconds} seconds`,
      { 'retry-after': String(reservation.retryAfterSeconds) }
    )
  }
  let method: ProofMethod | null
  try {
    method = await checkProof(request, user.userId, factors, proof)
  } catch (err) {
    await lockout.release(reservation.key)
    throw err
  }
  if (method === null) {
    securityEvent(request, 'mfa_failed', { user_id: user.userId, attempt: reservation.attempt })
    if (reservation.attempt >= lockout.threshold) securityEvent(
      request,
      'account_locked',
      { user_id: user.userId, attempt: reservation.attempt }
    )
    throw gatewayError('mfa_code_invalid')
  }
  await lockout.succeeded(reservation.key)
  return method
}
