/**
 * The guard of every `/admin/*` API route (docs/audit-and-dashboard.md): a live admin session, else 401 or 403.
 * Refused tokens count per client IP like on every other route that checks a token (429 past
 * PUBLIC_IP_LIMIT). With ADMIN_MFA=required the session must have used a second factor.
 */
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify'
import { tokenFailureLimit } from '../../limits/token-failure-limit.js'
import { requireSecondFactor } from '../../mfa/step-up.js'

export function adminOnly (fastify: FastifyInstance): preHandlerAsyncHookHandler[] {
  const guards = [tokenFailureLimit(fastify).guarded(fastify.authenticate), fastify.requireRole('admin')]
  // ADMIN_MFA=required: every admin API needs a session that used a second factor (docs/mfa.md).
  if (fastify.config.mfa.adminRequired) guards.push(async (request) => { requireSecondFactor(request.auth!) })
  return guards
}
