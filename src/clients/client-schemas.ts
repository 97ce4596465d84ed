/** TypeBox schemas of the machine-client routes (docs/machine-clients.md); the OpenAPI document is generated from them. */
import { Type } from 'typebox'
import { SCOPE_PATTERN } from './scopes.js'

const Scope = Type.String({ pattern: SCOPE_PATTERN, description: 'A scope token, e.g. `orders:read`' })

export const CreateClientBodySchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 128, description: 'Who the client is, for people' }),
  scopes: Type.Array(Scope, { minItems: 1, maxItems: 32, uniqueItems: true, description: 'Every scope the client may ever ask for' }),
  dpop_bound: Type.Optional(Type.Boolean({ description: 'The client gets tokens only with a DPoP proof (default false)' }))
}, { additionalProperties: false })

const clientFields = {
  client_id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  dpop_bound: Type.Boolean({ description: 'Tokens only with a DPoP proof' })
}

export const ClientSchema = Type.Object(clientFields)
export const CreatedClientSchema = Type.Object({
  ...clientFields,
  client_secret: Type.String({ description: 'Shown this once; the gateway keeps only a digest of it' })
})
export const ClientListSchema = Type.Object({ clients: Type.Array(ClientSchema) })

/** `POST /oauth/token` body (application/x-www-form-urlencoded). A repeated parameter arrives as an array and fails here. */
export const TokenRequestSchema = Type.Object({
  grant_type: Type.String({ maxLength: 256 }),
  scope: Type.Optional(Type.String({ maxLength: 2048,
    description: 'Space-separated subset of the client\'s scopes (default: all of them)' })),
  client_id: Type.Optional(Type.String({ maxLength: 256, description: 'With client_secret, instead of HTTP Basic' })),
  client_secret: Type.Optional(Type.String({ maxLength: 256 })),
  // Token exchange (RFC 8693); see src/routes/oauth/token-exchange.ts.
  subject_token: Type.Optional(Type.String({ maxLength: 8192, description: 'Token exchange: the user\'s access token' })),
  subject_token_type: Type.Optional(Type.String({ maxLength: 256,
    description: 'Token exchange: `urn:ietf:params:oauth:token-type:access_token`' })),
  requested_token_type: Type.Optional(Type.String({ maxLength: 256 })),
  audience: Type.Optional(Type.String({ maxLength: 256,
    description: 'Token exchange: the upstream (of the route table) the token is for' })),
  actor_token: Type.Optional(Type.String({ maxLength: 8192, description: 'Not supported: the authenticated client is the actor' })),
  actor_token_type: Type.Optional(Type.String({ maxLength: 256 }))
})

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

export const ExchangeResponseSchema = Type.Object({
  access_token: Type.String({ description: 'A delegated JWT access token for the user, acting client in `act`' }),
  issued_token_type: Type.Literal(ACCESS_TOKEN_TYPE),
  token_type: Type.Union(
    [Type.Literal('Bearer'), Type.Literal('DPoP')],
    { description: '`DPoP` when the request carried a DPoP proof: the delegated token is bound to its key' }
  ),
  expires_in: Type.Integer(),
  scope: Type.Optional(Type.String({ description: 'Present when the token was narrowed to scopes' }))
}, { description: 'Token exchange answer (RFC 8693 section 2.2.1)' })

export const ClientCredentialsResponseSchema = Type.Object({
  access_token: Type.String({ description: 'JWT access token (ES256)' }),
  token_type: Type.Union(
    [Type.Literal('Bearer'), Type.Literal('DPoP')],
    { description: '`DPoP` when the request carried a DPoP proof: the token is bound to its key' }
  ),
  expires_in: Type.Integer(),
  scope: Type.String({ description: 'The granted scopes, space-separated' })
})

/** The token endpoint's answer: client credentials, or token exchange. */
export const TokenResponseSchema = Type.Union([ClientCredentialsResponseSchema, ExchangeResponseSchema])

export const OAUTH_ERROR_CODES = [
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'insufficient_scope',
  'rate_limited',
  'temporarily_unavailable',
  'server_error',
  'invalid_dpop_proof',
  'use_dpop_nonce'
] as const

export const OAuthErrorSchema = Type.Object({
  error: Type.Union(OAUTH_ERROR_CODES.map((c) => Type.Literal(c))),
  error_description: Type.Optional(Type.String())
}, { description: 'RFC 6749 section 5.2 error (application/json, not problem+json)' })
