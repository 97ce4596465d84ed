/**
 * The headers an upstream receives (contract section 5). The client's credentials, any identity
 * or gateway header it tried to set, hop-by-hop and method-override headers are removed; the
 * gateway adds the verified identity, the request id, X-Forwarded-* and the signed assertion.
 */
import type { IncomingHttpHeaders } from 'node:http'

/** Removed from every proxied request, whatever their case. */
const REMOVED = new Set([
  'authorization', 'cookie', 'proxy-authorization',
  'x-http-method-override', 'x-method-override', 'x-http-method', 'x-original-url', 'x-rewrite-url',
  'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip',
  'x-request-id',
  // hop-by-hop (RFC 9110 7.6.1)
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'
])

const REMOVED_PREFIXES = ['x-user-', 'x-gateway-']

export interface UpstreamIdentity {
  userId: string
  username: string
  roles: string[]
}

export interface ForwardingFacts {
  requestId: string
  /** The X-Forwarded-For chain to send: trusted hops plus the peer. */
  forwardedFor: string
  proto: string
  host: string
  assertion: string
  identity: UpstreamIdentity | null
}

export function upstreamHeaders (incoming: IncomingHttpHeaders, facts: ForwardingFacts): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(incoming)) {
    if (REMOVED.has(name) || REMOVED_PREFIXES.some((p) => name.startsWith(p))) continue
    out[name] = value
  }
  if (facts.identity !== null) {
    out['x-user-id'] = facts.identity.userId
    out['x-user-name'] = facts.identity.username
    out['x-user-roles'] = facts.identity.roles.join(',')
  }
  out['x-request-id'] = facts.requestId
  out['x-forwarded-for'] = facts.forwardedFor
  out['x-forwarded-proto'] = facts.proto
  out['x-forwarded-host'] = facts.host
  out['x-gateway-assertion'] = facts.assertion
  return out
}
