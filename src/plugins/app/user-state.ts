/**
 * Live user state (docs/live-user-state.md): a user's `active` flag and roles as the users service has them,
 * kept in the user's Redis keys and read by the session check in the request's one round trip.
 *
 * - Changes made through the gateway are recorded before their answer leaves the gateway (see
 *   src/proxy/user-changes.ts), so every replica applies them from the next request on.
 * - Changes made elsewhere: once a state is older than half of USER_STATE_TTL, the one replica that
 *   takes the user's refresh lease (in the session check script) reads it again in the background
 *   while the last known state keeps serving. Past the TTL the last known state is no longer
 *   trusted: the request waits for a fresh read, and answers 503 `user_state_unavailable` without
 *   one. So a change made in the users service holds within USER_STATE_TTL.
 */
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import type { AnyRequest } from '../../lib/request-types.js'
import { gatewayError, GatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import type { StateSnapshot, UserState } from '../../sessions/session-store.js'
import type { AccessClaims } from '../../tokens/claims.js'

declare module 'fastify' {
  interface FastifyInstance {
    userState: UserStateService
  }
}

/** Where a state read comes from: a change seen in a users-service answer, or the TTL refresh. */
export type StateSource = 'change' | 'refresh'

export interface UserStateService {
  /**
   * The roles the request is authorized with, from the session check's snapshot (at once, no
   * promise, while the snapshot can be trusted), refreshing the state in the background when due;
   * else a promise of the state read again. Throws (or rejects with) 401 `token_revoked` for a
   * user found inactive, 503 when no state can be trusted.
   */
  currentRoles: (request: FastifyRequest, claims: AccessClaims, state: StateSnapshot) => string[] | Promise<string[]>
  /**
   * Reads the user from the users service and records the state; an inactive or unknown user
   * loses every session. Throws the users client's 502/504 when the users service fails.
   */
  refresh: (request: AnyRequest, userId: string, source: StateSource) => Promise<UserState>
}

/** How often a request waiting for another replica's refresh looks at Redis, and for how long. */
const WAIT_STEP_MS = 50
const WAIT_MAX_MS = 1000

const sameRoles = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((r, i) => r === b[i])

export default fp(async (fastify) => {
  const { sessions, users } = fastify
  const ttlMs = sessions.userStateTtlMs

  const refresh: UserStateService['refresh'] = async (request, userId, source) => {
    // The read's time is taken before it starts: a change recorded meanwhile is newer and wins.
    const startedAt = Date.now()
    const user = await users.lookupUser(userId, request.id)
    // A user the users service no longer knows is treated as deactivated.
    const state: UserState = user === null ? { active: false, roles: [] } : { active: user.active, roles: user.roles }
    const result = await sessions.recordUserState(userId, state, startedAt, state.active ? { mode: 'none' } : { mode: 'all' })
    if (!state.active && (source === 'change' || result.revoked > 0)) {
      securityEvent(request, 'user_deactivated', { user_id: userId, sessions: result.revoked, source,
        ...(user === null ? { reason: 'unknown_user' } : {}) })
    } else if (state.active && result.written && result.previousRoles !== null && !sameRoles(result.previousRoles, state.roles)) {
      securityEvent(request, 'user_roles_changed', { user_id: userId, roles: state.roles, previous_roles: result.previousRoles, source })
    }
    return state
  }

  function refreshInBackground (request: AnyRequest, userId: string): void {
    refresh(request, userId, 'refresh').catch((err: unknown) => {
      // The lease stays until it ends, so a failing users service is asked once per lease.
      request.log.warn({ user_id: userId, err }, 'user state refresh failed; the last known state holds until it is too old')
    })
  }

  /** Another replica holds the lease: its fresh state, or 503 when none comes in time. */
  async function awaitOthersRefresh (request: FastifyRequest, userId: string): Promise<UserState> {
    const deadline = Date.now() + WAIT_MAX_MS
    for (;;) {
      const recorded = await sessions.readUserState(userId)
      if (recorded !== null && Date.now() - recorded.checkedAt < ttlMs) return recorded
      if (Date.now() >= deadline) break
      await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS))
    }
    request.log.warn({ user_id: userId }, 'no fresh user state: another replica is refreshing it and none arrived in time')
    throw gatewayError('user_state_unavailable', 'the user\'s state cannot be confirmed right now', { 'retry-after': '1' })
  }

  const currentRoles: UserStateService['currentRoles'] = (request, claims, state) => {
    if (state.roles !== null && state.phase !== 'unusable') {
      if (state.phase === 'refresh-due' && state.leased) refreshInBackground(request, claims.sub)
      return state.roles
    }
    return rolesReadAgain(request, claims, state)
  }

  /** The roles when the snapshot cannot be trusted: read again here (lease held) or by the replica that holds it. */
  async function rolesReadAgain (request: FastifyRequest, claims: AccessClaims, state: StateSnapshot): Promise<string[]> {
    let fresh: UserState
    if (state.leased) {
      try {
        fresh = await refresh(request, claims.sub, 'refresh')
      } catch (err) {
        if (err instanceof GatewayError && err.code === 'store_unavailable') throw err
        request.log.warn({ user_id: claims.sub, err }, 'user state refresh failed and the last known state is too old')
        throw gatewayError('user_state_unavailable', 'the user\'s state cannot be confirmed right now', { 'retry-after': '1' }, err)
      }
    } else {
      fresh = await awaitOthersRefresh(request, claims.sub)
    }
    if (!fresh.active) {
      securityEvent(request, 'token_rejected', { user_id: claims.sub, reason: 'token_revoked' })
      throw gatewayError('token_revoked')
    }
    return fresh.roles
  }

  fastify.decorate('userState', { currentRoles, refresh })
}, { name: 'user-state', dependencies: ['session-store', 'users-client'] })
