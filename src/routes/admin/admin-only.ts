/**
 * The guard of every `/admin/*` API route (docs/audit-and-dashboard.md): a live admin session, else 401 or 403.
 * Refused tokens count per client IP like on every other route that checks a token (429 past
 * PUBLIC_IP_LIMIT).
 */
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify'
import { tokenFailureLimit } from '../../limits/token-failure-limit.js'

export function adminOnly (fastify: FastifyInstance): preHandlerAsyncHookHandler[] {
  return [tokenFailureLimit(fastify).guarded(fastify.authenticate), fastify.requireRole('admin')]
}
