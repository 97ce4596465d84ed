/**
 * POST /oauth/introspect: token introspection (RFC 7662) for machine clients with the scope
 * `tokens:introspect`, so other gateways and meshes (Kong, Envoy, Oathkeeper) can ask whether a
 * token of the gateway is live.
 *
 * "Active" is exactly what the proxy would accept at that moment: an access token goes through
 * the same decision as a proxied request (`fastify.acceptAccessToken`, src/plugins/app/authenticate.ts:
 * signature and claims, session alive, user active with their live roles, or the machine client
 * still registered and the token not revoked); a refresh token through the check of /auth/verify
 * (src/auth/live-token.ts). Anything else is only `{"active": false}`, whatever the reason.
 *
 * The answer is JSON, or a signed JWT (RFC 9701, `application/token-introspection+jwt`) when the
 * Accept header asks for it. Requests count against the client's API_CLIENT_LIMIT; each one is a
 * `token_introspected` event with the client, the outcome and the token's subject, never the token.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { decodeJwt } from 'jose'
import { Type } from 'typebox'
import { GatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { verifyLiveToken } from '../../auth/live-token.js'
import { authenticateClient, countClientRequest } from '../../clients/client-authentication.js'
import { OAuthErrorSchema } from '../../clients/client-schemas.js'
import { oauthErrors } from '../../clients/oauth-error.js'
import { OAUTH_SCOPES } from '../../plugins/app/delegation.js'
import type { RefreshClaims } from '../../tokens/claims.js'
import { given, requiredCredentials } from '../../clients/presented-credentials.js'

export const INTROSPECTION_JWT = 'application/token-introspection+jwt'

const IntrospectRequestSchema = Type.Object({
  token: Type.String({ maxLength: 8192, description: 'The token to introspect' }),
  token_type_hint: Type.Optional(Type.String({ maxLength: 64,
    description: '`access_token` or `refresh_token`; the gateway tells them apart itself' })),
  client_id: Type.Optional(Type.String({ maxLength: 256 })),
  client_secret: Type.Optional(Type.String({ maxLength: 256 }))
})

const IntrospectResponseSchema = Type.Object({
  active: Type.Boolean(),
  token_type: Type.Optional(Type.String({
    description: '`Bearer` or `DPoP` (bound) for an access token, `refresh_token` for a refresh token'
  })),
  sub: Type.Optional(Type.String()),
  exp: Type.Optional(Type.Integer()),
  iat: Type.Optional(Type.Integer()),
  iss: Type.Optional(Type.String()),
  aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
  jti: Type.Optional(Type.String()),
  sid: Type.Optional(Type.String({ description: 'The session (user tokens)' })),
  username: Type.Optional(Type.String()),
  roles: Type.Optional(Type.Array(Type.String(), { description: 'The user\'s live roles' })),
  client_id: Type.Optional(Type.String({ description: 'A machine client\'s token: the client; a delegated token: the acting client' })),
  scope: Type.Optional(Type.String()),
  act: Type.Optional(Type.Object({ sub: Type.String() }, { description: 'A delegated token (token exchange): who acts for the user' })),
  upstream: Type.Optional(Type.String({ description: 'A delegated token: the one upstream it reaches' })),
  cnf: Type.Optional(Type.Object(
    { jkt: Type.String() },
    { description: 'A DPoP-bound token: the thumbprint of its key (RFC 9449 section 6.2)' }
  ))
}, { description: 'RFC 7662 answer; `{"active": false}` alone for anything that is not live' })

type Introspection = Record<string, unknown> & { active: boolean }

/** The claimed token_type, read without trusting it (verification follows); null when it is no JWT. */
function claimedType (token: string): 'access' | 'refresh' | null {
  try {
    return decodeJwt(token).token_type === 'refresh' ? 'refresh' : 'access'
  } catch {
    return null
  }
}

/** Does the Accept header ask for the JWT answer (RFC 9701)? */
/** The registered claims (RFC 7519) every active answer carries, from either kind of token. */
function registeredClaims (c: { sub: string, exp: number, iat: number, iss: string, aud: string | string[], jti: string }) {
  return { sub: c.sub, exp: c.exp, iat: c.iat, iss: c.iss, aud: c.aud, jti: c.jti }
}

function wantsJwt (request: FastifyRequest): boolean {
  const accept = request.headers.accept
  return typeof accept === 'string' && accept.toLowerCase().split(',').some((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim())
    return type === INTROSPECTION_JWT && !params.some((p) => /^q=0(\.0*)?$/.test(p))
  })
}

const introspectRoute: FastifyPluginAsyncTypebox = async (fastify) => {
  /** The introspection of one token: what the proxy decides, as RFC 7662 members. */
  async function introspect (request: FastifyRequest, token: string): Promise<Introspection> {
    const type = claimedType(token)
    if (type === null) return { active: false }
    if (type === 'refresh') {
      const { claims } = await verifyLiveToken(fastify, token)
      const c = claims as RefreshClaims
      const bound = c.cnf !== undefined ? { cnf: c.cnf } : {}
      return { active: true, token_type: 'refresh_token', ...registeredClaims(c), sid: c.sid, ...bound }
    }
    const live = await fastify.acceptAccessToken(request, token, { record: false })
    const c = live.claims
    const bound = c.cnf !== undefined ? { cnf: { jkt: c.cnf.jkt } } : {}
    const common = { active: true, token_type: c.cnf !== undefined ? 'DPoP' : 'Bearer', ...registeredClaims(c), ...bound }
    if (live.kind === 'client') return { ...common, client_id: live.claims.client_id, scope: live.claims.scope }
    const user = live.claims
    return {
      ...common,
      sid: user.sid,
      username: user.username,
      roles: user.roles,
      ...(user.act !== undefined ? { act: user.act, client_id: user.act.sub.slice('client:'.length), upstream: user.upstream } : {}),
      ...(user.scope !== undefined ? { scope: user.scope } : {})
    }
  }

  fastify.post('/oauth/introspect', {
    schema: {
      tags: ['oauth'],
      summary: 'Token introspection (RFC 7662) for machine clients with scope `tokens:introspect`',
      description: `Body \`application/x-www-form-urlencoded\`; client authentication as at \`/oauth/token\`. \`active\` is true ` +
        `exactly when the proxy would accept the token now. With \`Accept: ${INTROSPECTION_JWT}\` the answer is a JWT signed with the ` +
          `gateway's keys (RFC 9701).`,
      security: [{ clientBasic: [] }, { oauthClient: ['tokens:introspect'] }],
      consumes: ['application/x-www-form-urlencoded'],
      body: IntrospectRequestSchema,
      response: {
        200: {
          description: 'The introspection: JSON, or a signed JWT when asked for',
          content: {
            'application/json': { schema: IntrospectResponseSchema },
            [INTROSPECTION_JWT]: { schema: Type.String(
              { description: 'A JWT (RFC 9701): `iss`, `aud` = the client, `iat`, the answer in `token_introspection`' }) }
          }
        },
        400: OAuthErrorSchema,
        401: OAuthErrorSchema,
        403: OAuthErrorSchema,
        413: OAuthErrorSchema,
        429: OAuthErrorSchema,
        503: OAuthErrorSchema
      }
    }
  }, async (request, reply) => {
    const client = await authenticateClient(fastify, request, requiredCredentials(request.headers.authorization, request.body))
    if (!client.scopes.includes(OAUTH_SCOPES.introspect)) {
      securityEvent(request, 'access_denied', { client_id: client.clientId, scopes: [OAUTH_SCOPES.introspect] })
      throw oauthErrors.insufficientScope(`the client lacks the scope ${OAUTH_SCOPES.introspect}`)
    }
    await countClientRequest(fastify, request, reply, client.clientId)
    const token = given(request.body.token)
    if (token === undefined) throw oauthErrors.invalidRequest('token is required')

    let answer: Introspection
    try {
      answer = await introspect(request, token)
    } catch (err) {
      // A token the proxy would refuse (401) is inactive; Redis or user-state failures stay 503.
      if (!(err instanceof GatewayError) || err.statusCode !== 401) throw err
      answer = { active: false }
    }
    securityEvent(request, 'token_introspected', {
      client_id: client.clientId,
      active: answer.active,
      ...(answer.active ? { subject: answer.sub, kind: answer.token_type, jti: answer.jti } : {})
    })
    if (wantsJwt(request)) {
      const jwt = await fastify.tokens.signIntrospection(client.clientId, answer)
      return reply.type(INTROSPECTION_JWT).send(jwt)
    }
    return answer
  })
}

export default introspectRoute
