/**
 * POST /oauth/revoke: token revocation (RFC 7009).
 *
 * - A user's access or refresh token (a delegated one included) revokes its session: every token
 *   of that login, and every delegated token exchanged from it, is refused from the next request
 *   on. Holding the token is enough: no client authentication is needed (a client that sends its
 *   credentials anyway must send right ones).
 * - A machine client's access token is revoked by that client only (its credentials, as at
 *   `/oauth/token`): the token is refused from the next request on until it would have expired;
 *   the client and its other tokens stay. Another client's token is refused with 400
 *   `unauthorized_client` and stays live.
 * - Anything else (unknown, forged, expired, malformed) is 200 and changes nothing, as RFC 7009
 *   asks, so the endpoint tells nobody whether a string was a token.
 *
 * Every revocation is an event of the audit trail (`session_revoked` with reason `oauth_revoke`,
 * or `token_revoked` for a client's token), never with the token. Unauthenticated requests count
 * per client IP like /auth/verify; authenticated ones against the client's API_CLIENT_LIMIT.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { decodeJwt } from 'jose'
import { Type } from 'typebox'
import { GatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { authenticateClient, countClientRequest, type AuthenticatedClient } from '../../clients/client-authentication.js'
import { OAuthErrorSchema } from '../../clients/client-schemas.js'
import { oauthErrors } from '../../clients/oauth-error.js'
import { isClientClaims } from '../../tokens/claims.js'
import { given, optionalCredentials } from '../../clients/presented-credentials.js'

const RevokeRequestSchema = Type.Object({
  token: Type.String({ maxLength: 8192, description: 'The token to revoke' }),
  token_type_hint: Type.Optional(Type.String({ maxLength: 64,
    description: '`access_token` or `refresh_token`; the gateway tells them apart itself' })),
  client_id: Type.Optional(Type.String({ maxLength: 256 })),
  client_secret: Type.Optional(Type.String({ maxLength: 256 }))
})

const revokeRoute: FastifyPluginAsyncTypebox = async (fastify) => {
  const ipLimit = fastify.ipLimitHook('verify', fastify.config.limits.verifyPerIp)

  /** Revokes what the token names; false when it names nothing live (nothing to do). */
  async function revoke (request: FastifyRequest, token: string, caller: AuthenticatedClient | null): Promise<boolean> {
    let refresh: boolean
    try {
      refresh = decodeJwt(token).token_type === 'refresh'
    } catch {
      return false // not even a JWT
    }
    const claims = refresh ? await fastify.tokens.verify(token, 'refresh') : await fastify.tokens.verifyAccess(token)
    if (isClientClaims(claims)) {
      if (caller === null) throw oauthErrors.invalidClient('a client\'s token is revoked by that client, with its credentials')
      if (caller.clientId !== claims.client_id) {
        securityEvent(request, 'access_denied', { client_id: caller.clientId, reason: 'revoke_foreign_token' })
        throw oauthErrors.unauthorizedClient('the token was not issued to this client')
      }
      await fastify.clients.revokeToken(claims.client_id, claims.jti, claims.exp)
      securityEvent(request, 'token_revoked', { client_id: claims.client_id, jti: claims.jti, reason: 'oauth_revoke' })
      return true
    }
    const revoked = await fastify.sessions.revoke(claims.sub, claims.sid)
    if (revoked) {
      const act = 'act' in claims ? claims.act : undefined
      securityEvent(request, 'session_revoked', {
        user_id: claims.sub,
        session_id: claims.sid,
        reason: 'oauth_revoke',
        ...(caller !== null ? { client_id: caller.clientId } : {}),
        ...(act !== undefined ? { act: act.sub } : {})
      })
    }
    return revoked
  }

  fastify.post('/oauth/revoke', {
    schema: {
      tags: ['oauth'],
      summary: 'Token revocation (RFC 7009)',
      description: 'Body `application/x-www-form-urlencoded`. A user\'s token revokes its session and needs no client authentication; a ' +
        'machine client\'s token is revoked by that client only (HTTP Basic or body credentials). 200 also for unknown or invalid tokens.',
      security: [{ clientBasic: [] }, {}],
      consumes: ['application/x-www-form-urlencoded'],
      body: RevokeRequestSchema,
      response: {
        200: Type.Object({}, { description: 'Revoked, or nothing to revoke (an empty object)' }),
        400: OAuthErrorSchema,
        401: OAuthErrorSchema,
        413: OAuthErrorSchema,
        429: OAuthErrorSchema,
        503: OAuthErrorSchema
      }
    }
  }, async (request, reply) => {
    const presented = optionalCredentials(request.headers.authorization, request.body)
    let caller: AuthenticatedClient | null = null
    if (presented !== null) {
      caller = await authenticateClient(fastify, request, presented)
      await countClientRequest(fastify, request, reply, caller.clientId)
    } else {
      await ipLimit(request, reply)
    }
    const token = given(request.body.token)
    if (token === undefined) throw oauthErrors.invalidRequest('token is required')
    try {
      await revoke(request, token, caller)
    } catch (err) {
      // Not a token of the gateway, or no longer valid: RFC 7009 2.2 answers 200 all the same.
      if (!(err instanceof GatewayError) || err.statusCode !== 401) throw err
    }
    return reply.code(200).send({})
  })
}

export default revokeRoute
