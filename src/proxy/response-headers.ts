/**
 * The gateway's own security headers (helmet) and CORS decisions always win over an upstream's
 * (contract 5): these response headers of an upstream never reach the client, and neither does a
 * Set-Cookie for one of the gateway's own cookies.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { REFRESH_COOKIE } from '../lib/refresh-cookie.js'

/** Headers the gateway sets on every answer (src/plugins/external/helmet.ts). */
const GATEWAY_OWNED = new Set([
  'strict-transport-security', 'content-security-policy', 'content-security-policy-report-only',
  'x-frame-options', 'x-content-type-options', 'referrer-policy', 'x-xss-protection',
  'x-dns-prefetch-control', 'x-download-options', 'x-permitted-cross-domain-policies',
  'origin-agent-cluster', 'cross-origin-opener-policy', 'cross-origin-resource-policy',
  'cross-origin-embedder-policy'
])

/** Cookies that only the gateway may set. */
const GATEWAY_COOKIES = new Set([REFRESH_COOKIE])

function cookieName (line: string): string {
  const eq = line.indexOf('=')
  return (eq === -1 ? line : line.slice(0, eq)).trim()
}

export function withoutGatewayOwnedHeaders (incoming: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(incoming)) {
    const lower = name.toLowerCase()
    if (GATEWAY_OWNED.has(lower) || lower.startsWith('access-control-')) continue
    if (lower === 'set-cookie' && value !== undefined) {
      const kept = (Array.isArray(value) ? value : [String(value)]).filter((line) => !GATEWAY_COOKIES.has(cookieName(line)))
      if (kept.length > 0) out[name] = kept
      continue
    }
    out[name] = value
  }
  return out
}
