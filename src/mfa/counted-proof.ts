/**
 * A second-factor proof checked under the login lockout: a wrong code counts as a failed login of
 * the (username, client IP) pair, so guessing codes is as slow as guessing passwords.
 */
import type { FastifyRequest } from 'fastify'
import { gatewayError, type ErrorCode } from '../errors.js'
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
  return await countedCheck(request, user, async () => await checkProof(request, user.userId, factors, proof), 'mfa_code_invalid')
}

/**
 * Any check of a user's proof under the lockout (a second factor, a passkey sign-in): its result,
 * or `failure` (counted as a failed login, event `mfa_failed`) when it gives null.
 * @throws GatewayError `account_locked`, `failure`, and the check's own errors
 */
export async function countedCheck<T> (
  request: FastifyRequest,
  user: { userId: string, username: string },
  check: () => Promise<T | null>,
  failure: ErrorCode
): Promise<T> {
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
  let method: T | null
  try {
    method = await check()
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
    throw gatewayError(failure)
  }
  await lockout.succeeded(reservation.key)
  return method
}
