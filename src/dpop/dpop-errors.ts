/**
 * DPoP refusals as the gateway's errors: 401 with a `WWW-Authenticate: DPoP` challenge naming the
 * error and the accepted algorithms (RFC 9449 section 7.1) on protected requests, 400 at the token
 * endpoints (RFC 9449 section 5.1); `use_dpop_nonce` also hands out the nonce to use.
 */
import { GatewayError } from '../errors.js'
import { PROOF_ALGS } from './proof.js'

export const DPOP_ALGS = PROOF_ALGS.join(' ')

/** A DPoP error answered with another status than the catalogue's (400 at the token endpoints). */
export class DpopError extends GatewayError {
  override readonly statusCode: number
  constructor (code: 'invalid_dpop_proof' | 'use_dpop_nonce', detail: string, headers: Record<string, string>, status: number) {
    super(code, detail, headers)
    this.statusCode = status
  }
}

/** The challenge of a refused DPoP request; `error` as RFC 6750 / RFC 9449 name it. */
export function dpopChallenge (error: string, description?: string): string {
  const desc = description === undefined ? '' : `, error_description="${description.replace(/["\\]/g, '')}"`
  return `DPoP realm="auth-gateway", error="${error}"${desc}, algs="${DPOP_ALGS}"`
}

/** A refused proof on a protected request (401) or at a token endpoint (400). */
export function proofError (
  code: 'invalid_dpop_proof' | 'use_dpop_nonce',
  reason: string,
  at: 'resource' | 'token',
  nonce?: string
): DpopError {
  const headers: Record<string, string> = {}
  if (nonce !== undefined) headers['dpop-nonce'] = nonce
  if (at === 'resource') headers['www-authenticate'] = dpopChallenge(code, reason)
  return new DpopError(code, reason, headers, at === 'resource' ? 401 : 400)
}
