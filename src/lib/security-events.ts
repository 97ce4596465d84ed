/**
 * Security events (contract section 8): one pino line each, with `event`, `user_id` where known,
 * `ip` and (through the request logger) `request_id`. Never a token, password or cookie.
 * Every event is also appended to the audit trail (section 11), without waiting for Redis; any
 * event name works, new ones need nothing more than their name in the union below.
 */
import type { AnyRequest } from './request-types.js'

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
  | 'identity_backend_refused'
  | 'identity_backend_error'
  | 'legacy_endpoint_used'
  | 'legacy_token_exchanged'
  | 'legacy_token_refused'
  | 'user_deactivated'
  | 'user_roles_changed'
  | 'password_changed'
  | 'ip_blocked'
  | 'block_lifted'
  | 'client_created'
  | 'client_token_issued'
  | 'client_auth_failed'
  | 'client_revoked'
  | 'routes_reloaded'

export function securityEvent (request: AnyRequest, event: SecurityEvent, fields: { user_id?: string | undefined, [k: string]: unknown } = {}): void {
  request.log.info({ event, ip: request.ip, ...fields }, event)
  request.server.metrics?.securityEvents.inc({ event })
  void request.server.audit?.append(event, { ip: request.ip, request_id: request.id, ...fields })
}
