/**
 * The client credentials an OAuth request presents (RFC 6749 section 2.3): HTTP Basic (2.3.1: id
 * and secret form-urlencoded, then base64) or `client_id` + `client_secret` in the body, never
 * both. Shared by every OAuth endpoint (src/routes/oauth/).
 */
import type { PresentedClient } from './client-authentication.js'
import { oauthErrors } from './oauth-error.js'

/** RFC 6749 3.1: a parameter sent without a value is treated as omitted. */
export const given = (value: string | undefined): string | undefined => value === '' ? undefined : value

/** RFC 6749 appendix B: form-urlencoded, `+` is a space. */
function formDecode (value: string): string | null {
  try {
    return decodeURIComponent(value.replaceAll('+', ' '))
  } catch {
    return null
  }
}

/** The credentials of an `Authorization: Basic` header; null when it is malformed or of another scheme. */
export function basicCredentials (header: string): PresentedClient | null {
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header)
  if (match === null) return null
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) return null
  const clientId = formDecode(decoded.slice(0, colon))
  const clientSecret = formDecode(decoded.slice(colon + 1))
  if (clientId === null || clientSecret === null || clientId === '') return null
  return { clientId, clientSecret }
}

export interface ClientAuthParams { client_id?: string | undefined, client_secret?: string | undefined }

/**
 * The client credentials a request presents, or null when it presents none: no Authorization
 * header and no client_secret (a client_id alone authenticates nothing).
 */
export function optionalCredentials (authorization: string | undefined, body: ClientAuthParams): PresentedClient | null {
  const bodyId = given(body.client_id)
  const bodySecret = given(body.client_secret)
  if (authorization !== undefined) {
    const basic = basicCredentials(authorization)
    if (basic === null) throw oauthErrors.invalidClient('unsupported or malformed client authentication (use HTTP Basic)')
    // A client_id alone in the body may name the same client (RFC 6749 3.2.1); a second secret may not.
    if (bodySecret !== undefined || (bodyId !== undefined && bodyId !== basic.clientId)) {
      throw oauthErrors.invalidRequest('more than one client authentication method')
    }
    return basic
  }
  if (bodySecret === undefined) return null
  if (bodyId === undefined) throw oauthErrors.invalidClient('client_secret without client_id')
  return { clientId: bodyId, clientSecret: bodySecret }
}

/** The client credentials a request must present. */
export function requiredCredentials (authorization: string | undefined, body: ClientAuthParams): PresentedClient {
  const presented = optionalCredentials(authorization, body)
  if (presented === null) throw oauthErrors.invalidClient('client authentication required')
  return presented
}
