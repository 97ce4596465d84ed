/**
 * Security events (contract section 8): one pino line each, with `event`, `user_id` where known,
 * `ip` and (through the request logger) `request_id`. Never a token, password or cookie.
 */
import type { FastifyRequest } from 'fastify'

export type SecurityEvent =
  | 'login_succeeded'
  | 'login_failed'
  | 'account_locked'
  | 'token_refreshed'
  | 'token_reuse_detected'
  | 'session_revoked'
  | 'logout_all'
  | 'rate_limited'
  | 'token_rejected'
  | 'access_denied'
  | 'client_created'
  | 'client_token_issued'
  | 'client_auth_failed'
  | 'client_revoked'

export function securityEvent (request: FastifyRequest, event: SecurityEvent, fields: { user_id?: string | undefined, [k: string]: unknown } = {}): void {
  request.log.info({ event, ip: request.ip, ...fields }, event)
  request.server.metrics?.securityEvents.inc({ event })
}
