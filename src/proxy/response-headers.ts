/**
 * The headers of an upstream's answer as the client gets them (docs/proxy.md), in one pass:
 * - the gateway's own security headers (helmet) and CORS decisions always win: an upstream's
 *   never reach the client, and neither does a Set-Cookie for one of the gateway's own cookies;
 * - hop-by-hop headers are dropped (an upstream's `Connection: keep-alive` must not override the
 *   client's `Connection: close`), with the headers its `Connection` names;
 * - the upstream's own X-Request-Id is dropped, so that the gateway's request id is the one echoed;
 * - the users service's change marks (src/proxy/user-changes.ts) are for the gateway alone.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { REFRESH_COOKIE } from '../lib/refresh-cookie.js'
import { USER_CHANGE_HEADERS } from './user-changes.js'
import { connectionNamed } from './upstream-headers.js'

/** Headers the gateway sets on every answer (src/plugins/external/helmet.ts). */
const GATEWAY_OWNED = new Set([
  'strict-transport-security', 'content-security-policy', 'content-security-policy-report-only',
  'x-frame-options', 'x-content-type-options', 'referrer-policy', 'x-xss-protection',
  'x-dns-prefetch-control', 'x-download-options', 'x-permitted-cross-domain-policies',
  'origin-agent-cluster', 'cross-origin-opener-policy', 'cross-origin-resource-policy',
  'cross-origin-embedder-policy'
])

/** Hop-by-hop headers (RFC 9110 7.6.1): they concern the upstream connection only. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(
  ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])

/** Cookies that only the gateway may set. */
const GATEWAY_COOKIES = new Set([REFRESH_COOKIE])

function cookieName (line: string): string {
  const eq = line.indexOf('=')
  return (eq === -1 ? line : line.slice(0, eq)).trim()
}

function dropped (lower: string, connectionNamed: readonly string[]): boolean {
  return GATEWAY_OWNED.has(lower) || lower.startsWith('access-control-') || HOP_BY_HOP.has(lower) ||
    lower === 'x-request-id' || USER_CHANGE_HEADERS.has(lower) || connectionNamed.includes(lower)
}

/** Runs on every proxied answer: one loop, no allocation beyond the result in the common case. */
export function clientResponseHeaders (incoming: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = connectionNamed(incoming.connection)
  const out: IncomingHttpHeaders = {}
  for (const name in incoming) {
    const value = incoming[name]
    const lower = name.toLowerCase()
    if (dropped(lower, named)) continue
    if (lower === 'set-cookie' && value !== undefined) {
      const kept = (Array.isArray(value) ? value : [String(value)]).filter((line) => !GATEWAY_COOKIES.has(cookieName(line)))
      if (kept.length > 0) out[name] = kept
      continue
    }
    out[name] = value
  }
  return out
}
