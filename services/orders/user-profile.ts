/**
 * The orders service calling another service on the user's behalf through the gateway (token
 * exchange, RFC 8693): the service never sees the user's access token (the gateway removes it),
 * so it presents the request's `X-Gateway-Assertion` as the subject token with its own client
 * credentials, gets a short-lived token for that user restricted to the users upstream, and reads
 * `GET /api/users/me` with it. The request id travels along, so the audit trail ties the exchange
 * to the user's request.
 */

export interface DelegationOptions {
  /** The gateway's base URL (a function: tests learn it after the stub starts). */
  gatewayUrl: string | (() => string)
  clientId: string
  clientSecret: string
}

const TIMEOUT_MS = 3000

/** RFC 6749 2.3.1: id and secret form-urlencoded, then base64. */
function basic (id: string, secret: string): string {
  const enc = (s: string): string => encodeURIComponent(s).replaceAll('%20', '+')
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')
}

/** The username of the caller's profile, read through the gateway as the user; throws on any failure. */
export async function profileUsername (opts: DelegationOptions, assertion: string, requestId: string | undefined): Promise<string> {
  const base = typeof opts.gatewayUrl === 'function' ? opts.gatewayUrl() : opts.gatewayUrl
  const trace: Record<string, string> = requestId !== undefined ? { 'x-request-id': requestId } : {}
  const exchanged = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { ...trace, authorization: basic(opts.clientId, opts.clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: assertion,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: 'users'
    }).toString(),
    signal: AbortSignal.timeout(TIMEOUT_MS)
  })
  if (exchanged.status !== 200) throw new Error(`token exchange refused: ${exchanged.status} ${await exchanged.text()}`)
  const { access_token: token } = await exchanged.json() as { access_token: string }
  const me = await fetch(`${base}/api/users/me`, { headers: { ...trace, authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(TIMEOUT_MS) })
  if (me.status !== 200) throw new Error(`profile read refused: ${me.status}`)
  const profile = await me.json() as { username?: unknown }
  if (typeof profile.username !== 'string') throw new Error('profile without username')
  return profile.username
}
