/**
 * Step-up (RFC 9470): a request that needs a second factor, or one used within N seconds, and
 * whose access token does not show it, gets 401 `insufficient_user_authentication` with a
 * challenge saying what would do (`max_age`, or `acr_values="mfa"`).
 */
import { GatewayError } from '../errors.js'
import type { AccessClaims } from '../tokens/claims.js'
import { nowSeconds } from '../tokens/token-service.js'

/** A second factor was part of how the token's session (or its last step-up) authenticated. */
export function usedSecondFactor (claims: Pick<AccessClaims, 'amr'>): boolean {
  return claims.amr?.includes('mfa') === true
}

/** Throws unless a second factor was used within `maxAge` seconds. */
export function requireFreshFactor (claims: Pick<AccessClaims, 'amr' | 'auth_time'>, maxAge: number): void {
  if (usedSecondFactor(claims) && claims.auth_time !== undefined && nowSeconds() - claims.auth_time <= maxAge) return
  const error = new GatewayError('insufficient_user_authentication', `a second factor used within the last ${maxAge} seconds is needed`,
    { 'www-authenticate': `Bearer error="insufficient_user_authentication", max_age="${maxAge}"` })
  error.extensions = { max_age: maxAge }
  throw error
}

/** Throws unless a second factor was used (ADMIN_MFA=required). */
export function requireSecondFactor (claims: Pick<AccessClaims, 'amr'>): void {
  if (usedSecondFactor(claims)) return
  const error = new GatewayError('insufficient_user_authentication', 'a second factor is needed',
    { 'www-authenticate': 'Bearer error="insufficient_user_authentication", acr_values="mfa"' })
  error.extensions = { acr_values: 'mfa' }
  throw error
}

/** The problems of routes that need a second factor while MFA_ENCRYPTION_KEY is unset: start-up stops on them. */
export function stepUpWithoutFactors (
  routes: ReadonlyArray<{ path: string, stepUpMaxAge?: number }>,
  config: { mfa: { key: Buffer | null }, routes: { file?: string | undefined } }
): string[] {
  if (config.mfa.key !== null) return []
  return routes.filter((r) => r.stepUpMaxAge !== undefined)
    .map((r) => `${config.routes.file ?? 'routes'}: route ${r.path}: step_up_max_age needs second factors (MFA_ENCRYPTION_KEY is unset)`)
}
