/**
 * The password step of a login for a user with a second factor: instead of a session, 403
 * `mfa_required` with a short-lived `mfa_token` and the methods that can complete it.
 */
import type { FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import type { Identity } from '../tokens/token-service.js'
import { methodsOf } from './factors.js'

/** The `mfa_required` error for this user, or null when the user has no active factor (or factors are off). */
export async function secondFactorNeeded (
  request: FastifyRequest,
  identity: Identity,
  checkedAt: number,
  cookie: boolean
): Promise<GatewayError | null> {
  const { mfa } = request.server
  if (mfa === null) return null
  const methods = methodsOf(await mfa.factors.list(identity.userId, request.id))
  if (methods.length === 0) return null
  const token = await mfa.state.issueToken({
    userId: identity.userId,
    username: identity.username,
    roles: identity.roles,
    cookie,
    methods,
    checkedAt
  })
  securityEvent(request, 'mfa_challenged', { user_id: identity.userId, methods })
  const error = new GatewayError('mfa_required', 'the password is right; a second factor is needed (POST /auth/mfa/verify)')
  error.extensions = { mfa_token: token, methods }
  return error
}
