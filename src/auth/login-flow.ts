/**
 * Logging in, shared by `POST /auth/login` and the simplejwt routes (`/api/token/`,
 * `/api-token-auth/`): lockout, credential check, security events and the new session. The routes
 * differ only in the shape of their answers.
 */
import type { FastifyRequest } from 'fastify'
import { gatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import { clientBucket } from '../limits/client-ip.js'
import { newId, nowSeconds, type AuthContext, type Identity, type IssuedToken, type TokenBinding } from '../tokens/token-service.js'
import { secondFactorNeeded } from '../mfa/login-step.js'

export interface StartedSession {
  identity: Identity
  sessionId: string
  access: IssuedToken
  refresh: IssuedToken
}

/**
 * A new session of an identity the caller has already established (login, legacy exchange).
 * `checkedAt`: when the identity backend gave these roles; they are recorded as the user's live
 * state (docs/live-user-state.md) unless a newer state is already there.
 */
export async function startSession (request: FastifyRequest, identity: Identity, checkedAt: number, binding?: TokenBinding,
  auth: AuthContext = { amr: ['pwd'], authTime: nowSeconds() }): Promise<StartedSession> {
  const { tokens, sessions } = request.server
  const sessionId = newId()
  // A DPoP key binds both tokens; the refresh token keeps the session's fingerprint for the next refresh (src/dpop/fingerprint.ts).
  const [access, refresh] = await Promise.all([
    tokens.signAccess(identity, sessionId, binding, auth),
    tokens.signRefresh(identity.userId, sessionId, binding, auth)
  ])
  await sessions.create({
    ...identity,
    sessionId,
    refreshJti: refresh.jti,
    stateCheckedAt: checkedAt,
    ip: request.ip,
    userAgent: request.headers['user-agent'] ?? ''
  })
  return { identity, sessionId, access, refresh }
}

/**
 * Checks the credentials under the lockout and starts a session.
 * @throws GatewayError `account_locked`, `invalid_credentials`, and the users client's and store's errors
 */
export async function logIn (request: FastifyRequest, username: string, password: string,
  opts: { cookie?: boolean, binding?: TokenBinding } = {}): Promise<StartedSession> {
  const { lockout, users, blocks } = request.server
  const ipBucket = clientBucket(request.ip)
  // The attempt is counted before the password is checked: parallel guesses cannot pass the threshold.
  // The IP block check goes in the same write to Redis (auto-pipelined).
  const [ipBlockedFor, reservation] = await Promise.all([blocks.ipBlockedFor(ipBucket), lockout.reserve(username, ipBucket)])
  if (ipBlockedFor > 0) {
    if (!reservation.locked) await lockout.release(reservation.key)
    securityEvent(request, 'ip_blocked', { retry_after: ipBlockedFor })
    throw gatewayError('ip_blocked', `too many failed logins from this address; retry in ${ipBlockedFor} seconds`,
      { 'retry-after': String(ipBlockedFor) })
  }
  if (reservation.locked) {
    securityEvent(request, 'account_locked', { retry_after: reservation.retryAfterSeconds })
    throw gatewayError('account_locked', `too many failed logins; retry in ${reservation.retryAfterSeconds} seconds`,
      { 'retry-after': String(reservation.retryAfterSeconds) })
  }
  let identity
  const checkedAt = Date.now()
  try {
    identity = await users.checkCredentials(username, password, request.id)
  } catch (err) {
    await lockout.release(reservation.key)
    throw err
  }
  if (identity === null) {
    securityEvent(request, 'login_failed', { attempt: reservation.attempt })
    const locks = reservation.attempt >= lockout.threshold
    // The answer stays 401 if Redis fails here: the attempt was already counted by the lockout.
    const notRecorded = (err: unknown): null => {
      request.log.warn({ err: { message: (err as Error).message } }, 'failed login not recorded for the block list'); return null }
    const [ipBlock, accountLock] = await Promise.all([
      blocks.recordFailure(username, ipBucket).catch(notRecorded),
      locks ? blocks.recordAccountLock(reservation.key, username, ipBucket, reservation.attempt).catch(notRecorded) : null
    ])
    if (accountLock !== null) securityEvent(request, 'account_locked', { attempt: reservation.attempt, block_id: accountLock.id })
    if (ipBlock !== null) securityEvent(request, 'ip_blocked', { block_id: ipBlock.id, usernames: ipBlock.failures, until: ipBlock.until })
    throw gatewayError('invalid_credentials')
  }
  // A user with a second factor is not logged in yet: mfa_required with a token for the next step.
  // Earlier failures stay counted (only this attempt is undone): wrong codes count in the same lockout.
  let pending
  try {
    pending = await secondFactorNeeded(request, identity, checkedAt, opts.cookie === true)
  } catch (err) {
    await lockout.release(reservation.key)
    throw err
  }
  if (pending !== null) {
    await lockout.release(reservation.key)
    throw pending
  }
  await lockout.succeeded(reservation.key)
  const session = await startSession(request, identity, checkedAt, opts.binding)
  securityEvent(request, 'login_succeeded', { user_id: identity.userId, session_id: session.sessionId })
  return session
}
