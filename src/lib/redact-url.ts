/**
 * URLs as they may be logged: no token-shaped substring and no value of a sensitive query
 * parameter (`GET /api/orders?access_token=eyJ...`, `GET /nope/eyJ...`) ever reaches a log line.
 */

/** A JWS/JWE compact serialization: base64url segments, the first a JSON header (`eyJ` = `{"`), dots possibly percent-encoded. */
const JWT_SHAPED = /eyJ[A-Za-z0-9_-]*(?:(?:\.|%2[Ee])[A-Za-z0-9_-]*){1,4}/g

/** Query parameters whose value is a credential, compared in lower case. */
const SENSITIVE_PARAMS = new Set([
  'access_token', 'refresh_token', 'id_token', 'token', 'access', 'refresh', 'jwt', 'code',
  'password', 'client_secret', 'api_key', 'apikey', 'key', 'secret', 'assertion', 'authorization',
  // a WebSocket ticket (src/live/ws-ticket.ts)
  'ticket'
])

export const REDACTED = '[redacted]'

export function redactUrl (url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  const q = url.indexOf('?')
  const path = (q === -1 ? url : url.slice(0, q)).replace(JWT_SHAPED, REDACTED)
  if (q === -1) return path
  const query = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    const rawName = eq === -1 ? pair : pair.slice(0, eq)
    let name = rawName
    try { name = decodeURIComponent(rawName.replace(/\+/g, ' ')) } catch { /* keep it raw */ }
    if (eq !== -1 && SENSITIVE_PARAMS.has(name.trim().toLowerCase())) return `${rawName}=${REDACTED}`
    return pair.replace(JWT_SHAPED, REDACTED)
  }).join('&')
  return `${path}?${query}`
}
