/**
 * The headers an upstream receives (docs/upstreams.md). The client's credentials, any identity
 * or gateway header it tried to set, hop-by-hop and method-override headers are removed; the
 * gateway adds the verified identity, the request id, X-Forwarded-* and the signed assertion.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { encodeIdentityList, encodeIdentityValue } from './identity-encoding.js'

const NONE: readonly string[] = Object.freeze([])

/** The header names a Connection header lists (RFC 9110 7.6.1: they concern that hop only), in lower case. */
export function connectionNamed (connection: string | string[] | undefined): readonly string[] {
  if (typeof connection !== 'string') return NONE
  return connection.includes(',')
    ? connection.toLowerCase().split(',').map((s) => s.trim()).filter((s) => s.length > 0)
    : [connection.trim().toLowerCase()]
}

/** Removed from every proxied request, whatever their case. */
const REMOVED = new Set([
  'authorization', 'cookie', 'proxy-authorization',
  'x-http-method-override', 'x-method-override', 'x-http-method', 'x-original-url', 'x-rewrite-url',
  'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip',
  'x-request-id',
  // a machine client's identity (docs/machine-clients.md), set by the gateway only
  'x-client-id', 'x-client-scopes',
  // hop-by-hop (RFC 9110 7.6.1)
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade',
  // Node already answered the client's 100-continue; undici refuses to send Expect (502)
  'expect'
])

/** Removed too: any name with one of these prefixes (`x-user-`, `x-gateway-`). */
const removedByPrefix = (name: string): boolean => name.startsWith('x-user-') || name.startsWith('x-gateway-')

export interface UpstreamIdentity {
  userId: string
  username: string
  roles: readonly string[]
}

/** The identity headers' values, percent-encoded UTF-8 (src/proxy/identity-encoding.ts): never raw non-ASCII bytes. */
export interface IdentityHeaders {
  readonly id: string
  readonly name: string
  readonly roles: string
}

export function identityHeaders (identity: UpstreamIdentity): IdentityHeaders {
  return {
    id: encodeIdentityValue(identity.userId),
    name: encodeIdentityValue(identity.username),
    roles: encodeIdentityList(identity.roles)
  }
}

export interface ForwardingFacts {
  requestId: string
  /** The X-Forwarded-For chain to send: trusted hops plus the peer. */
  forwardedFor: string
  proto: string
  host: string
  assertion: string
  /** The user's identity headers (identityHeaders), or null. */
  identity: IdentityHeaders | null
  /** A machine client instead of a user (docs/machine-clients.md). */
  client?: { clientId: string, scopes: string[] } | null
}

export function upstreamHeaders (incoming: IncomingHttpHeaders, facts: ForwardingFacts): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  // The names the client's Connection header lists go first, before the gateway adds its own.
  const named = connectionNamed(incoming.connection)
  // Node gives header names in lower case. This loop runs on every proxied request: no allocation
  // (no closure either) but for names with an underscore.
  for (const name in incoming) {
    // CGI-style upstreams (WSGI, Rack, PHP) read `X_User_Id` as `X-User-Id`: underscores count as dashes.
    const canonical = name.includes('_') ? name.toLowerCase().replaceAll('_', '-') : name.toLowerCase()
    if (REMOVED.has(canonical) || removedByPrefix(canonical) || named.includes(canonical)) continue
    out[name] = incoming[name]
  }
  if (facts.identity !== null) {
    out['x-user-id'] = facts.identity.id
    out['x-user-name'] = facts.identity.name
    out['x-user-roles'] = facts.identity.roles
  }
  if (facts.client != null) {
    out['x-client-id'] = facts.client.clientId
    out['x-client-scopes'] = facts.client.scopes.join(',')
  }
  out['x-request-id'] = facts.requestId
  out['x-forwarded-for'] = facts.forwardedFor
  out['x-forwarded-proto'] = facts.proto
  out['x-forwarded-host'] = facts.host
  // None on a public route: it forwards no identity.
  if (facts.assertion !== '') out['x-gateway-assertion'] = facts.assertion
  return out
}
