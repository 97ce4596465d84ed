/** Is this access or refresh token live, revocation included? Shared by `/auth/verify` and `/api/token/verify/`. */
import type { FastifyInstance } from 'fastify'
import { decodeJwt } from 'jose'
import { gatewayError } from '../errors.js'
import type { AccessClaims, ClientAccessClaims, RefreshClaims, TokenType } from '../tokens/claims.js'
import { claimsClient, verifyClientToken } from '../clients/verify-client-token.js'

/** The token_type the token claims, read without trusting it (verification follows). */
function claimedType (token: string): TokenType {
  try {
    return decodeJwt(token).token_type === 'refresh' ? 'refresh' : 'access'
  } catch {
    throw gatewayError('token_invalid', 'malformed token')
  }
}

/**
 * The claims of a live token of the gateway: a user's access or refresh token (its session alive),
 * or a machine client's access token (the client still registered).
 * @throws GatewayError `token_invalid`, `token_expired`, `token_revoked`
 */
export async function verifyLiveToken (fastify: FastifyInstance,
  token: string): Promise<{ type: TokenType, claims: AccessClaims | RefreshClaims | ClientAccessClaims }> {
  const type = claimedType(token)
  if (type === 'access' && claimsClient(token)) return { type, claims: await verifyClientToken(fastify, token) }
  const claims = await fastify.tokens.verify(token, type)
  const live = type === 'access'
    ? await fastify.sessions.isAlive(claims.sub, claims.sid)
    : await fastify.sessions.isRefreshLive(claims.sub, claims.sid, claims.jti)
  if (!live) throw gatewayError('token_revoked')
  return { type, claims }
}
