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

/*
 * The WebAuthn JSON forms (WebAuthn Level 3, as @simplewebauthn produces and reads them), for the
 * passkey routes (docs/mfa.md#passkeys). Options are answered as the library makes them (members
 * this schema does not name pass through); responses are checked for their shape here and for
 * everything else by the library.
 */
const loose = { additionalProperties: true }
const Base64Url = Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength: 16384 })
const CredentialDescriptor = Type.Object({
  id: Type.String(),
  type: Type.String({ description: 'public-key' }),
  transports: Type.Optional(Type.Array(Type.String()))
}, loose)
const ClientExtensionResults = Type.Object({
  appid: Type.Optional(Type.Boolean()),
  credProps: Type.Optional(Type.Object({ rk: Type.Optional(Type.Boolean()) }, loose)),
  hmacCreateSecret: Type.Optional(Type.Boolean())
}, loose)
const Attachment = Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')]))

export const CreationOptionsSchema = Type.Object({
  rp: Type.Object({ name: Type.String(), id: Type.Optional(Type.String()) }, loose),
  user: Type.Object({ id: Type.String(), name: Type.String(), displayName: Type.String() }, loose),
  challenge: Type.String(),
  pubKeyCredParams: Type.Array(Type.Object({ alg: Type.Integer(), type: Type.Literal('public-key') }, loose)),
  timeout: Type.Optional(Type.Integer()),
  excludeCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
  authenticatorSelection: Type.Optional(Type.Object({}, loose)),
  hints: Type.Optional(Type.Array(Type.String())),
  attestation: Type.Optional(Type.String()),
  attestationFormats: Type.Optional(Type.Array(Type.String())),
  extensions: Type.Optional(Type.Object({}, loose))
}, {
  ...loose,
  description: 'PublicKeyCredentialCreationOptionsJSON, for navigator.credentials.create (or @simplewebauthn/browser startRegistration)'
})

export const RequestOptionsSchema = Type.Object({
  challenge: Type.String(),
  timeout: Type.Optional(Type.Integer()),
  rpId: Type.Optional(Type.String()),
  allowCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
  userVerification: Type.Optional(Type.String()),
  hints: Type.Optional(Type.Array(Type.String())),
  extensions: Type.Optional(Type.Object({}, loose))
}, {
  ...loose,
  description: 'PublicKeyCredentialRequestOptionsJSON, for navigator.credentials.get (or @simplewebauthn/browser startAuthentication)'
})

export const RegistrationResponseSchema = Type.Object({
  id: Base64Url,
  rawId: Base64Url,
  response: Type.Object({
    clientDataJSON: Base64Url,
    attestationObject: Base64Url,
    authenticatorData: Type.Optional(Base64Url),
    transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 16 })),
    publicKeyAlgorithm: Type.Optional(Type.Integer()),
    publicKey: Type.Optional(Base64Url)
  }, loose),
  authenticatorAttachment: Attachment,
  clientExtensionResults: ClientExtensionResults,
  type: Type.Literal('public-key')
}, { ...loose, description: 'RegistrationResponseJSON, as navigator.credentials.create gives it (toJSON)' })

export const AuthenticationResponseSchema = Type.Object({
  id: Base64Url,
  rawId: Base64Url,
  response: Type.Object({
    clientDataJSON: Base64Url,
    authenticatorData: Base64Url,
    signature: Base64Url,
    userHandle: Type.Optional(Base64Url)
  }, loose),
  authenticatorAttachment: Attachment,
  clientExtensionResults: ClientExtensionResults,
  type: Type.Literal('public-key')
}, { ...loose, description: 'AuthenticationResponseJSON, as navigator.credentials.get gives it (toJSON)' })
