/**
 * Verification of a machine client's access token outside the proxy (`POST /auth/verify`,
 * `/api/token/verify/`; docs/tokens-and-sessions.md and docs/machine-clients.md): live while its signature and claims hold, the
 * client still exists and the token was not revoked (POST /oauth/revoke). Not counted against the client's limit.
 */
import type { FastifyInstance } from 'fastify'
import { decodeJwt } from 'jose'
import { gatewayError } from '../errors.js'
import { isClientClaims, type ClientAccessClaims } from '../tokens/claims.js'

/** Does the token claim to be a client's (read without trusting it; verification follows)? */
export function claimsClient (token: string): boolean {
  try {
    return isClientClaims(decodeJwt(token))
  } catch {
    return false
  }
}

/**
 * The claims of a live client access token.
 * @throws GatewayError `token_invalid`, `token_expired`, `token_revoked` (the client was deleted)
 */
export async function verifyClientToken (fastify: FastifyInstance, token: string): Promise<ClientAccessClaims> {
  const claims = await fastify.tokens.verifyAccess(token)
  if (!isClientClaims(claims)) throw gatewayError('token_invalid')
  if (!await fastify.clients.isTokenLive(claims.client_id, claims.jti)) throw gatewayError('token_revoked')
  return claims
}
