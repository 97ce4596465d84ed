/** TypeBox schemas shared by the routes; the OpenAPI document is generated from them. */
import { Type } from 'typebox'
import { ERROR_CATALOGUE } from './errors.js'

export const ProblemSchema = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  code: Type.Union(Object.keys(ERROR_CATALOGUE).map((c) => Type.Literal(c))),
  detail: Type.Optional(Type.String()),
  instance: Type.Optional(Type.String()),
  request_id: Type.Optional(Type.String())
}, { $id: 'Problem', description: 'application/problem+json (RFC 9457)' })

/** Problem responses for the given statuses, for a route's `response` schema. */
export function problems (...statuses: number[]): Record<number, typeof ProblemSchema> {
  return Object.fromEntries(statuses.map((s) => [s, ProblemSchema]))
}

export const UserSchema = Type.Object({
  id: Type.String(),
  username: Type.String(),
  roles: Type.Array(Type.String())
})

const tokenFields = {
  access: Type.String({ description: 'JWT access token (ES256)' }),
  refresh: Type.Optional(Type.String({ description: 'Rotating refresh token; absent in cookie mode' })),
  token_type: Type.Union(
    [Type.Literal('Bearer'), Type.Literal('DPoP')],
    { description: '`DPoP` when the request carried a DPoP proof: the tokens are bound to its key (docs/dpop.md)' }
  ),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
  refresh_expires_in: Type.Integer({ description: 'Seconds until the refresh token expires' })
}

export const LoginBodySchema = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 256 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
  cookie: Type.Optional(Type.Boolean({ description: 'Set the refresh token as an HttpOnly cookie instead of returning it' }))
})

export const LoginResponseSchema = Type.Object({ ...tokenFields, user: UserSchema })

/** 403 `mfa_required` of a password login whose user has a second factor (docs/mfa.md). */
export const MfaRequiredSchema = Type.Object({
  ...ProblemSchema.properties,
  mfa_token: Type.Optional(Type.String({ description: 'For POST /auth/mfa/verify; single use, 5 minutes, at most 5 tries' })),
  methods: Type.Optional(Type.Array(Type.Union([Type.Literal('totp'), Type.Literal('webauthn'), Type.Literal('recovery_code')])))
}, { description: 'application/problem+json; `mfa_required` carries mfa_token and methods' })
export const RefreshResponseSchema = Type.Object(tokenFields)

export const RefreshBodySchema = Type.Object({
  refresh: Type.Optional(Type.String({ minLength: 1, maxLength: 8192 }))
})

export const VerifyBodySchema = Type.Object({ token: Type.String({ minLength: 1, maxLength: 8192 }) })
export const VerifyResponseSchema = Type.Object({
  valid: Type.Literal(true),
  token_type: Type.Union([Type.Literal('access'), Type.Literal('refresh')]),
  sub: Type.String(),
  exp: Type.Integer()
})

export const SessionSchema = Type.Object({
  id: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.String({ format: 'date-time' }),
  ip: Type.String(),
  user_agent: Type.String(),
  current: Type.Boolean()
})
export const SessionListSchema = Type.Object({ sessions: Type.Array(SessionSchema) })

export const NoContent = Type.Null({ description: 'No content' })
