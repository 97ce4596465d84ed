/**
 * The gateway's one error catalogue. Every error a client can see has a stable snake_case `code`,
 * an HTTP status and a title (docs/errors.md); the error handler turns them into problem+json.
 */

export const ERROR_CATALOGUE = {
  invalid_request: { status: 400, title: 'Invalid request' },
  invalid_credentials: { status: 401, title: 'Invalid credentials' },
  token_missing: { status: 401, title: 'Token missing' },
  token_invalid: { status: 401, title: 'Token invalid' },
  token_expired: { status: 401, title: 'Token expired' },
  token_revoked: { status: 401, title: 'Token revoked' },
  token_reused: { status: 401, title: 'Refresh token reused' },
  forbidden: { status: 403, title: 'Forbidden' },
  csrf_rejected: { status: 403, title: 'Cross-site request rejected' },
  not_found: { status: 404, title: 'Not found' },
  request_timeout: { status: 408, title: 'Request timeout' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  headers_too_large: { status: 431, title: 'Request header fields too large' },
  rate_limited: { status: 429, title: 'Too many requests' },
  account_locked: { status: 429, title: 'Account temporarily locked' },
  ip_blocked: { status: 429, title: 'Client address temporarily blocked' },
  internal_error: { status: 500, title: 'Internal server error' },
  upstream_unavailable: { status: 502, title: 'Upstream unavailable' },
  store_unavailable: { status: 503, title: 'Session store unavailable' },
  shutting_down: { status: 503, title: 'Gateway shutting down' },
  user_state_unavailable: { status: 503, title: 'User state unavailable' },
  upstream_timeout: { status: 504, title: 'Upstream timeout' },
  invalid_dpop_proof: { status: 401, title: 'Invalid DPoP proof' },
  use_dpop_nonce: { status: 401, title: 'DPoP nonce required' },
  mfa_required: { status: 403, title: 'Second factor required' },
  mfa_token_invalid: { status: 401, title: 'Second-factor token invalid or expired' },
  mfa_code_invalid: { status: 401, title: 'Second-factor code invalid' },
  passkey_invalid: { status: 401, title: 'Passkey not accepted' },
  insufficient_user_authentication: { status: 401, title: 'A fresher or stronger authentication is needed' }
} as const satisfies Record<string, { status: number, title: string }>

export type ErrorCode = keyof typeof ERROR_CATALOGUE

/** Codes of 401 answers that concern a token the client sent (they get `error="invalid_token"`). */
const TOKEN_CODES: ReadonlySet<ErrorCode> = new Set(['token_invalid', 'token_expired', 'token_revoked', 'token_reused'])

/** An error of the catalogue. `detail` is safe to show to the client; never put a secret in it. */
export class GatewayError extends Error {
  override name = 'GatewayError'
  readonly code: ErrorCode
  readonly statusCode: number
  readonly title: string
  /** Extra response headers, such as `Retry-After`. */
  readonly headers: Record<string, string>
  /** Extra members of the problem body (RFC 9457 extensions), such as `mfa_token`. */
  extensions: Record<string, unknown> = {}

  constructor (code: ErrorCode, detail?: string, headers: Record<string, string> = {}, cause?: unknown) {
    const entry = ERROR_CATALOGUE[code]
    super(detail ?? entry.title, cause === undefined ? undefined : { cause })
    this.code = code
    this.statusCode = entry.status
    this.title = entry.title
    this.headers = headers
  }

  /** True for 401s about a token that was presented (RFC 6750 `invalid_token`). */
  get concernsPresentedToken (): boolean {
    return TOKEN_CODES.has(this.code)
  }
}

/** Shorthand used across the code base: `throw gatewayError('token_expired')`. */
export function gatewayError (code: ErrorCode, detail?: string, headers?: Record<string, string>, cause?: unknown): GatewayError {
  return new GatewayError(code, detail, headers, cause)
}

/** The problem `type` URI of a code. */
export function problemType (code: string): string {
  return `urn:auth-gateway:problem:${code}`
}

/** The problem+json body of an error (RFC 9457). */
export interface Problem {
  type: string
  title: string
  status: number
  code: ErrorCode
  detail?: string
  instance?: string
  request_id?: string
  [extension: string]: unknown
}
