/** POST /auth/login: credentials in, a new session with an access and a refresh token out (4.1). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { setRefreshCookie } from '../../lib/refresh-cookie.js'
import { LoginBodySchema, LoginResponseSchema, problems } from '../../schemas.js'
import { newId } from '../../tokens/token-service.js'
import { clientBucket } from '../../limits/client-ip.js'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jwt, cookieSecure, limits } = fastify.config

  fastify.post('/auth/login', {
    config: { rateLimit: fastify.ipLimit('login', limits.loginPerIp) },
    schema: {
      tags: ['auth'],
      summary: 'Log in with username and password',
      body: LoginBodySchema,
      response: { 200: LoginResponseSchema, ...problems(400, 401, 429, 502, 503, 504) }
    }
  }, async (request, reply) => {
    const { username, password, cookie } = request.body
    const ipBucket = clientBucket(request.ip)
    // The attempt is counted before the password is checked: parallel guesses cannot pass the threshold.
    // The IP block check goes in the same write to Redis (auto-pipelined).
    const [ipBlockedFor, reservation] = await Promise.all([fastify.blocks.ipBlockedFor(ipBucket), fastify.lockout.reserve(username, ipBucket)])
    if (ipBlockedFor > 0) {
      if (!reservation.locked) await fastify.lockout.release(reservation.key)
      securityEvent(request, 'ip_blocked', { retry_after: ipBlockedFor })
      throw gatewayError('ip_blocked', `too many failed logins from this address; retry in ${ipBlockedFor} seconds`, { 'retry-after': String(ipBlockedFor) })
    }
    if (reservation.locked) {
      securityEvent(request, 'account_locked', { retry_after: reservation.retryAfterSeconds })
      throw gatewayError('account_locked', `too many failed logins; retry in ${reservation.retryAfterSeconds} seconds`, { 'retry-after': String(reservation.retryAfterSeconds) })
    }
    let identity
    try {
      identity = await fastify.users.checkCredentials(username, password, request.id)
    } catch (err) {
      await fastify.lockout.release(reservation.key)
      throw err
    }
    if (identity === null) {
      securityEvent(request, 'login_failed', { attempt: reservation.attempt })
      const locks = reservation.attempt >= fastify.lockout.threshold
      // The answer stays 401 if Redis fails here: the attempt was already counted by the lockout.
      const notRecorded = (err: unknown): null => { request.log.warn({ err: { message: (err as Error).message } }, 'failed login not recorded for the block list'); return null }
      const [ipBlock, accountLock] = await Promise.all([
        fastify.blocks.recordFailure(username, ipBucket).catch(notRecorded),
        locks ? fastify.blocks.recordAccountLock(reservation.key, username, ipBucket, reservation.attempt).catch(notRecorded) : null
      ])
      if (accountLock !== null) securityEvent(request, 'account_locked', { attempt: reservation.attempt, block_id: accountLock.id })
      if (ipBlock !== null) securityEvent(request, 'ip_blocked', { block_id: ipBlock.id, usernames: ipBlock.failures, until: ipBlock.until })
      throw gatewayError('invalid_credentials')
    }
    await fastify.lockout.succeeded(reservation.key)
    const sessionId = newId()
    const [access, refresh] = await Promise.all([
      fastify.tokens.signAccess(identity, sessionId),
      fastify.tokens.signRefresh(identity.userId, sessionId)
    ])
    await fastify.sessions.create({
      ...identity,
      sessionId,
      refreshJti: refresh.jti,
      ip: request.ip,
      userAgent: request.headers['user-agent'] ?? ''
    })
    securityEvent(request, 'login_succeeded', { user_id: identity.userId, session_id: sessionId })
    if (cookie === true) setRefreshCookie(reply, refresh.token, jwt.refreshTtl, cookieSecure)
    return {
      access: access.token,
      ...(cookie === true ? {} : { refresh: refresh.token }),
      token_type: 'Bearer' as const,
      expires_in: jwt.accessTtl,
      refresh_expires_in: jwt.refreshTtl,
      user: { id: identity.userId, username: identity.username, roles: identity.roles }
    }
  })
}

export default login
