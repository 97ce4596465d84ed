/**
 * POST /oauth/token: the OAuth 2.0 client credentials grant (RFC 6749 section 4.4) and token
 * exchange (RFC 8693, src/routes/oauth/token-exchange.ts), for machine clients.
 *
 * An encapsulated form scope of its own (src/routes/oauth/oauth-form-scope.ts: form bodies only,
 * small, RFC 6749 JSON errors, `Cache-Control: no-store`). Client credentials by HTTP Basic or in
 * the body, never both (src/clients/presented-credentials.ts). Wrong secrets count per client IP
 * before any secret is compared; issued tokens count against the client's limit.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { securityEvent } from '../../lib/security-events.js'
import { narrowScopes } from '../../clients/scopes.js'
import { OAuthErrorSchema, TokenRequestSchema, TokenResponseSchema } from '../../clients/client-schemas.js'
import { oauthErrors } from '../../clients/oauth-error.js'
import { given, requiredCredentials } from '../../clients/presented-credentials.js'
import { oauthFormScope, TOKEN_BODY_LIMIT } from './oauth-form-scope.js'
import { TOKEN_EXCHANGE_GRANT } from '../../clients/client-schemas.js'
import { tokenExchange } from './token-exchange.js'
import { authenticateClient, countClientRequest } from '../../clients/client-authentication.js'

const tokenRoute: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jwt } = fastify.config

  await oauthFormScope(fastify)

  fastify.post('/oauth/token', {
    bodyLimit: TOKEN_BODY_LIMIT,
    schema: {
      tags: ['oauth'],
      summary: 'OAuth 2.0 client credentials grant (RFC 6749 4.4) and token exchange (RFC 8693) for machine clients',
      description: 'Body `application/x-www-form-urlencoded`. Client authentication by HTTP Basic or `client_id` + `client_secret` in ' +
        'the body (not both). Errors are RFC 6749 5.2 JSON; 401 carries `WWW-Authenticate: Basic`. Token exchange ' +
          '(`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, scope `token-exchange`): `subject_token` a user\'s access ' +
            'token (or a gateway assertion, `subject_token_type` `urn:ietf:params:oauth:token-type:jwt`), `audience` an upstream, ' +
              'optional narrowing `scope`; the answer is a short-lived delegated token for that upstream\'s routes.',
      security: [{ clientBasic: [] }, { oauthClient: ['token-exchange'] }, {}],
      consumes: ['application/x-www-form-urlencoded'],
      body: TokenRequestSchema,
      response: {
        200: TokenResponseSchema,
        400: OAuthErrorSchema,
        401: OAuthErrorSchema,
        413: OAuthErrorSchema,
        429: OAuthErrorSchema,
        503: OAuthErrorSchema
      }
    }
  }, async (request, reply) => {
    const body = request.body
    const grantType = given(body.grant_type)
    if (grantType === undefined) throw oauthErrors.invalidRequest('grant_type is required')
    if (grantType === TOKEN_EXCHANGE_GRANT) return await tokenExchange(fastify, request, reply, body,
      requiredCredentials(request.headers.authorization, body))
    if (grantType !== 'client_credentials') throw oauthErrors.unsupportedGrantType(
      'only client_credentials and token exchange are supported')
    const presented = requiredCredentials(request.headers.authorization, body)
    const record = await authenticateClient(fastify, request, presented)
    // After client authentication: a proof alone earns nothing, and a bound client must bring one.
    const jkt = await fastify.dpop.tokenProof(request, { required: record.dpopBound })
    const scopes = narrowScopes(record.scopes, given(body.scope))
    if (scopes === null) throw oauthErrors.invalidScope('the requested scope is malformed or not the client\'s')

    // Issued tokens count against the client's limit; the client may have been deleted meanwhile.
    await countClientRequest(fastify, request, reply, presented.clientId)

    const scope = scopes.join(' ')
    const access = await fastify.tokens.signClientAccess(presented.clientId, scope, jkt)
    securityEvent(
      request,
      'client_token_issued',
      { client_id: presented.clientId, scope, jti: access.jti, ...(jkt !== undefined ? { dpop: true } : {}) }
    )
    return {
      access_token: access.token,
      token_type: jkt !== undefined ? 'DPoP' as const : 'Bearer' as const,
      expires_in: jwt.accessTtl,
      scope
    }
  })
}

export default tokenRoute
