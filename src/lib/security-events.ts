/**
 * Security events (docs/observability.md): one pino line each, with `event`, `user_id` where known,
 * `ip` and (through the request logger) `request_id`. Never a token, password or cookie.
 * Every event is also appended to the audit trail (docs/audit-and-dashboard.md), without waiting for Redis; any
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
  | 'token_exchanged'
  | 'token_introspected'
  | 'token_revoked'
  | 'routes_reloaded'
  | 'dpop_proof_rejected'
  | 'token_unbound_use'
  | 'mfa_challenged'
  | 'mfa_enrolled'
  | 'mfa_succeeded'
  | 'mfa_failed'
  | 'passkey_counter_regressed'
  | 'mfa_removed'
  | 'recovery_code_used'

/** Client IPs remembered while the request's socket was there (see pinClientIp). */
const pinnedIps = new WeakMap<object, string>()

/**
 * Remembers the request's client IP now. Fastify reads `request.ip` from the socket, which a
 * proxied request with a body no longer has when its upstream answer arrives; events written then
 * (src/proxy/user-changes.ts) take the IP remembered here.
 */
export function pinClientIp (request: AnyRequest): void {
  const ip: string | undefined = request.ip
  if (ip !== undefined) pinnedIps.set(request.raw, ip)
}

/** The client IP of an event: every event has one ('unknown' only when no socket ever told it). */
export function eventIp (request: AnyRequest): string {
  const ip: string | undefined = request.ip
  return ip ?? pinnedIps.get(request.raw) ?? 'unknown'
}

export function securityEvent (request: AnyRequest, event: SecurityEvent,
  fields: { user_id?: string | undefined, [k: string]: unknown } = {}): void {
  const ip = eventIp(request)
  request.log.info({ event, ip, ...fields }, event)
  request.server.metrics?.securityEvents.inc({ event })
  void request.server.audit?.append(event, { ip, request_id: request.id, ...fields })
}
