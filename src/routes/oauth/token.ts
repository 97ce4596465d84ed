/**
 * POST /oauth/token: the OAuth 2.0 client credentials grant (RFC 6749 section 4.4, contract 13).
 *
 * An encapsulated scope of its own: only `application/x-www-form-urlencoded` bodies are parsed
 * (JSON is refused), bodies are small, and every answer, error or not, is RFC 6749 JSON with
 * `Cache-Control: no-store` and `Pragma: no-cache`. Client authentication by HTTP Basic (RFC 6749
 * 2.3.1: form-urlencoded id and secret) or by `client_id` + `client_secret` in the body, never
 * both. Wrong secrets count per client IP; issued tokens count against the client's limit.
 */
import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { securityEvent } from '../../lib/security-events.js'
import { narrowScopes } from '../../clients/scopes.js'
import { OAuthErrorSchema, TokenRequestSchema, TokenResponseSchema } from '../../clients/client-schemas.js'
import { oauthErrors, sendOAuthError, toOAuthError } from '../../clients/oauth-error.js'
import { TOKEN_EXCHANGE_GRANT } from '../../clients/client-schemas.js'
import { tokenExchange } from './token-exchange.js'
import { authenticateClient, countClientRequest } from '../../clients/client-authentication.js'

/** Token requests are a few hundred bytes; anything much larger is refused before it is read. */
export const TOKEN_BODY_LIMIT = 8 * 1024

export interface ClientCredentials { clientId: string, clientSecret: string }

/** RFC 6749 appendix B: form-urlencoded, `+` is a space. */
function formDecode (value: string): string | null {
  try {
    return decodeURIComponent(value.replaceAll('+', ' '))
  } catch {
    return null
  }
}

/** The credentials of an `Authorization: Basic` header; null when it is malformed or of another scheme. */
export function basicCredentials (header: string): ClientCredentials | null {
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

/** RFC 6749 3.1: a parameter sent without a value is treated as omitted. */
const given = (value: string | undefined): string | undefined => value === '' ? undefined : value

const tokenRoute: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jwt } = fastify.config

  // Only form bodies here: JSON (and anything else) is an unsupported media type, i.e. invalid_request.
  fastify.removeAllContentTypeParsers()
  await fastify.register(formbody, { bodyLimit: TOKEN_BODY_LIMIT })
  fastify.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
  })
  fastify.setErrorHandler((err, request, reply) => {
    const error = toOAuthError(err)
    if (error.statusCode >= 500) request.log.error({ err, error: error.error }, 'token request failed')
    return sendOAuthError(error, request, reply)
  })

  /** Who the client says it is, by exactly one method (RFC 6749 2.3). */
  function presentedCredentials (authorization: string | undefined, body: { client_id?: string | undefined, client_secret?: string | undefined }): ClientCredentials {
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
    if (bodyId === undefined || bodySecret === undefined) throw oauthErrors.invalidClient('client authentication required')
    return { clientId: bodyId, clientSecret: bodySecret }
  }

  fastify.post('/oauth/token', {
    bodyLimit: TOKEN_BODY_LIMIT,
    schema: {
      tags: ['oauth'],
      summary: 'OAuth 2.0 client credentials grant (RFC 6749 4.4) and token exchange (RFC 8693) for machine clients',
      description: 'Body `application/x-www-form-urlencoded`. Client authentication by HTTP Basic or `client_id` + `client_secret` in the body (not both). Errors are RFC 6749 5.2 JSON; 401 carries `WWW-Authenticate: Basic`. Token exchange (`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, scope `token-exchange`): `subject_token` a user\'s access token (or a gateway assertion, `subject_token_type` `urn:ietf:params:oauth:token-type:jwt`), `audience` an upstream, optional narrowing `scope`; the answer is a short-lived delegated token for that upstream\'s routes.',
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
    if (grantType === TOKEN_EXCHANGE_GRANT) return await tokenExchange(fastify, request, reply, body, presentedCredentials(request.headers.authorization, body))
    if (grantType !== 'client_credentials') throw oauthErrors.unsupportedGrantType('only client_credentials and token exchange are supported')
    const presented = presentedCredentials(request.headers.authorization, body)
    const record = await authenticateClient(fastify, request, presented)
    const scopes = narrowScopes(record.scopes, given(body.scope))
    if (scopes === null) throw oauthErrors.invalidScope('the requested scope is malformed or not the client\'s')

    // Issued tokens count against the client's limit; the client may have been deleted meanwhile.
    await countClientRequest(fastify, request, reply, presented.clientId)

    const scope = scopes.join(' ')
    const access = await fastify.tokens.signClientAccess(presented.clientId, scope)
    securityEvent(request, 'client_token_issued', { client_id: presented.clientId, scope, jti: access.jti })
    return { access_token: access.token, token_type: 'Bearer' as const, expires_in: jwt.accessTtl, scope }
  })
}

export default tokenRoute
