/**
 * How the gateway learns of user changes made through it (docs/live-user-state.md). The users service marks
 * its answer to a change with a header naming the user; before that answer leaves the gateway,
 * the change is recorded in the user's Redis keys, so every replica applies it from the next
 * request on:
 *
 *   X-User-State-Changed: <id>      active flag or roles changed: the gateway reads the user again
 *                                   (`GET /internal/users/{id}`) and records it; deactivation
 *                                   revokes every session (event `user_deactivated`).
 *   X-User-Password-Changed: <id>   every other session of the user is revoked (event `password_changed`).
 *   X-User-Password-Rejected: <id>  a wrong current password: counted like a failed login.
 *
 * These headers are believed only from the users upstream and never reach the client. Routes
 * marked `passwordCheck` reserve a lockout attempt for (username, client IP) before proxying, as
 * login does: a locked pair gets 429 `account_locked` without reaching the users service.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { gatewayError, GatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import { clientBucket } from '../limits/client-ip.js'
import { sendProblem } from '../lib/problem.js'
import type { AnyReply, AnyRequest } from '../lib/request-types.js'
import { Compile } from 'typebox/compile'
import { Id } from '../tokens/claims.js'

const isId = Compile(Id)

export const STATE_CHANGED = 'x-user-state-changed'
export const PASSWORD_CHANGED = 'x-user-password-changed'
export const PASSWORD_REJECTED = 'x-user-password-rejected'

/** Stripped from every upstream answer (src/proxy/upstream-headers.ts). */
export const USER_CHANGE_HEADERS: ReadonlySet<string> = new Set([STATE_CHANGED, PASSWORD_CHANGED, PASSWORD_REJECTED])

/** What reply-from hands to `onResponse` (its type declaration names another shape). */
export interface UpstreamAnswer { statusCode: number, headers: IncomingHttpHeaders, stream: Readable }

/** Narrows what reply-from's `onResponse` declares (a server response) to what it passes. */
function isUpstreamAnswer (res: object): res is UpstreamAnswer {
  const r = res as Partial<Record<keyof UpstreamAnswer, unknown>>
  return typeof r.statusCode === 'number' && typeof r.headers === 'object' && r.headers !== null && typeof r.stream === 'object'
}

/** A user id named by a header: one value, in the id alphabet (it goes into Redis keys). */
function namedUser (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  if (typeof value !== 'string') return undefined
  const id = value.trim()
  return isId.Check(id) ? id : undefined
}

interface Attempt { key: string, attempt: number }

export interface UserChanges {
  /** Guard step of a `passwordCheck` route: reserves a lockout attempt; 429 when the pair is locked. */
  reserveAttempt: (request: FastifyRequest) => Promise<void>
  /** reply-from `onResponse` of the users upstream: applies the marked changes, then sends the answer. */
  onUsersAnswer: (request: AnyRequest, reply: AnyReply, res: object & { stream: Readable }) => void
  /** Gives back a reservation that no answer settled (upstream failure, 5xx); null when there is none. */
  releaseUnsettled: (request: FastifyRequest) => Promise<void> | null
}

export function userChanges (fastify: FastifyInstance): UserChanges {
  const attempts = new WeakMap<AnyRequest, Attempt>()

  async function settleAttempt (request: AnyRequest, res: UpstreamAnswer): Promise<void> {
    const attempt = attempts.get(request)
    if (attempt === undefined) return
    attempts.delete(request)
    const auth = request.auth!
    if (namedUser(res.headers, PASSWORD_REJECTED) === auth.sub) {
      // Counted: the reservation stays, as for a wrong password at login.
      securityEvent(request, 'login_failed', { user_id: auth.sub, attempt: attempt.attempt, reason: 'wrong_current_password' })
      if (attempt.attempt >= fastify.lockout.threshold) securityEvent(request, 'account_locked',
        { user_id: auth.sub, attempt: attempt.attempt })
    } else if (res.statusCode >= 200 && res.statusCode < 300) {
      await fastify.lockout.succeeded(attempt.key)
    } else {
      await fastify.lockout.release(attempt.key)
    }
  }

  async function applyChanges (request: AnyRequest, res: UpstreamAnswer): Promise<void> {
    await settleAttempt(request, res)
    const passwordOf = namedUser(res.headers, PASSWORD_CHANGED)
    if (passwordOf !== undefined) {
      const auth = request.auth
      // The caller's own session stays; an admin changing another user's password ends all of theirs.
      const keep = auth !== null && auth.sub === passwordOf ? auth.sid : undefined
      const revoked = await fastify.sessions.revokeSessions(passwordOf, keep === undefined ? { mode: 'all' } : { mode: 'others', keep })
      securityEvent(request, 'password_changed', { user_id: passwordOf, sessions_revoked: revoked,
        ...(keep === undefined ? { by: auth?.sub } : {}) })
    }
    const stateOf = namedUser(res.headers, STATE_CHANGED)
    if (stateOf !== undefined) {
      try {
        await fastify.userState.refresh(request, stateOf, 'change')
      } catch (err) {
        if (err instanceof GatewayError && err.code === 'store_unavailable') throw err
        // The change happened but could not be read back: forget the old state, so the next
        // request of that user must read it (or get 503) instead of trusting what changed.
        request.log.warn({ user_id: stateOf, err }, 'user changed but its state could not be read; forgotten')
        await fastify.sessions.forgetUserState(stateOf)
      }
    }
  }

  return {
    async reserveAttempt (request) {
      const auth = request.auth!
      const reservation = await fastify.lockout.reserve(auth.username, clientBucket(request.ip))
      if (reservation.locked) {
        securityEvent(request, 'account_locked', { user_id: auth.sub, retry_after: reservation.retryAfterSeconds })
        throw gatewayError('account_locked', `too many failed password checks; retry in ${reservation.retryAfterSeconds} seconds`,
          { 'retry-after': String(reservation.retryAfterSeconds) })
      }
      attempts.set(request, { key: reservation.key, attempt: reservation.attempt })
    },

    onUsersAnswer (request, reply, res) {
      if (!isUpstreamAnswer(res)) throw new TypeError('reply-from passed an answer without status and headers')
      const marked = attempts.has(request) || res.headers[STATE_CHANGED] !== undefined || res.headers[PASSWORD_CHANGED] !== undefined
      if (!marked) {
        reply.send(res.stream)
        return
      }
      applyChanges(request, res).then(() => reply.send(res.stream), (err: unknown) => {
        // The change is made in the users service but not applied here (Redis failed): the
        // client is told so, and may repeat it.
        res.stream.destroy()
        request.log.error({ err }, 'a user change could not be applied by the gateway')
        const error = err instanceof GatewayError ? err : gatewayError('store_unavailable', undefined, { 'retry-after': '1' }, err)
        sendProblem(gatewayError(error.code, 'the change was made but the gateway could not apply it yet; repeat the request',
          error.headers), request, reply)
      })
    },

    releaseUnsettled (request) {
      const attempt = attempts.get(request)
      if (attempt === undefined) return null
      attempts.delete(request)
      return fastify.lockout.release(attempt.key)
    }
  }
}
