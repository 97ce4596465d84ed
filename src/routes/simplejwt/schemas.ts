/** TypeBox schemas of the simplejwt-compatible routes (docs/simplejwt-api.md), for the OpenAPI document. */
import { Type } from 'typebox'

const form = (description: string) => Type.String({ minLength: 1, maxLength: 8192, description })

export const TokenObtainBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 256 }),
  password: Type.String({ minLength: 1, maxLength: 1024 })
}, { description: 'JSON or application/x-www-form-urlencoded' })
export const RefreshBody = Type.Object({ refresh: form(
  'A refresh token of the gateway, or of the old Django service during the cut-over') })
export const OptionalRefreshBody = Type.Object({ refresh: Type.Optional(form('Another session of the caller to end as well')) })
export const VerifyBody = Type.Object({ token: form('An access or refresh token') })

export const TokenPair = Type.Object({
  refresh: Type.String(),
  access: Type.String(),
  token_type: Type.Optional(Type.Literal(
    'DPoP',
    { description: 'Present when the request carried a DPoP proof: both tokens are bound to its key (docs/dpop.md)' }
  ))
})
export const Empty = Type.Object({}, { description: '{}' })

/** DRF's validation errors, keyed by field. */
export const DrfValidationErrors = Type.Record(Type.String(), Type.Array(Type.String()),
  { description: 'DRF validation errors by field, e.g. {"username": ["This field is required."]}' })
/** DRF's and simplejwt's `{"detail", "code"?}`. */
export const DrfDetail = Type.Object({ detail: Type.String(), code: Type.Optional(Type.String()) },
  { description: 'DRF / simplejwt error' })

/** A user with a second factor: 403 with the `mfa_token` and `methods` for POST /auth/mfa/verify (docs/mfa.md). */
export const DrfMfaRequired = Type.Object({
  detail: Type.String(),
  code: Type.Literal('mfa_required'),
  mfa_token: Type.String(),
  methods: Type.Array(Type.String())
}, { description: 'a second factor is required' })

export function drfErrors (...statuses: number[]): Record<number, typeof DrfDetail | typeof DrfValidationErrors> {
  return Object.fromEntries(statuses.map((s) => [s, s === 400 ? DrfValidationErrors : DrfDetail]))
}
