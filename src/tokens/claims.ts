/** The claims of the gateway's tokens (docs/tokens-and-sessions.md), as TypeBox schemas so their types are derived. */
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'

/** Ids end up inside Redis keys and hash tags, so they are restricted to a safe alphabet. */
export const Id = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })

/** A DPoP-bound token's confirmation (RFC 9449 section 6.1): the thumbprint of the client's key. */
const Confirmation = Type.Optional(Type.Object({ jkt: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }) }))
/** A cookie-mode token's fingerprint: SHA-256 of the fingerprint cookie (src/dpop/fingerprint.ts). */
const Fingerprint = Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }))

const Common = {
  iss: Type.String(),
  sub: Id,
  sid: Id,
  jti: Id,
  iat: Type.Integer(),
  exp: Type.Integer(),
  /** How the user authenticated (RFC 8176: pwd, otp, hwk, mfa), kept from the login across refreshes. */
  amr: Type.Optional(Type.Array(Type.String({ maxLength: 16 }), { maxItems: 8 })),
  /** When the user last authenticated (a login, or a second factor since), in seconds. */
  auth_time: Type.Optional(Type.Integer())
}

export const AccessClaimsSchema = Type.Object({
  ...Common,
  aud: Type.Union([Type.String(), Type.Array(Type.String())]),
  token_type: Type.Literal('access'),
  /** simplejwt's USER_ID_CLAIM (= sub), so stock simplejwt services accept the token (docs/simplejwt-api.md). */
  user_id: Type.Optional(Id),
  username: Type.String(),
  roles: Type.Array(Type.String()),
  /** A delegated token (token exchange, src/routes/oauth/token-exchange.ts): the client acting for the user. */
  act: Type.Optional(Type.Object({ sub: Type.String({ pattern: '^client:[A-Za-z0-9_-]{1,64}$' }) })),
  /** A delegated token: the one upstream whose routes it may use. */
  upstream: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /** A delegated token narrowed to scopes: the routes' scopes apply to it as to a client's token. */
  scope: Type.Optional(Type.String({ maxLength: 4096 })),
  cnf: Confirmation,
  fgp: Fingerprint
})

export const RefreshClaimsSchema = Type.Object({
  ...Common,
  aud: Type.Union([Type.String(), Type.Array(Type.String())]),
  token_type: Type.Literal('refresh'),
  /** A bound refresh token refreshes only with a proof of the same key. */
  cnf: Confirmation,
  /** Cookie mode: the session's fingerprint, kept across refreshes. */
  fgp: Fingerprint
})

/** A machine client's access token (docs/machine-clients.md): no session, no username, no roles. */
export const ClientAccessClaimsSchema = Type.Object({
  iss: Type.String(),
  aud: Type.Union([Type.String(), Type.Array(Type.String())]),
  sub: Type.String({ pattern: '^client:[A-Za-z0-9_-]{1,64}$' }),
  jti: Id,
  iat: Type.Integer(),
  exp: Type.Integer(),
  token_type: Type.Literal('access'),
  client_id: Id,
  scope: Type.String({ maxLength: 4096 }),
  cnf: Confirmation
})

export type AccessClaims = Static<typeof AccessClaimsSchema>
export type ClientAccessClaims = Static<typeof ClientAccessClaimsSchema>

/** True for a machine client's access token (it names a client_id; user tokens never do). */
export function isClientClaims (claims: object): claims is ClientAccessClaims {
  return 'client_id' in claims
}
export type RefreshClaims = Static<typeof RefreshClaimsSchema>
export type TokenType = 'access' | 'refresh'
export type ClaimsOf<T extends TokenType> = T extends 'access' ? AccessClaims : RefreshClaims

export const claimsCheckers = {
  access: Compile(AccessClaimsSchema),
  refresh: Compile(RefreshClaimsSchema),
  client: Compile(ClientAccessClaimsSchema)
}
