/**
 * Django REST framework's and simplejwt's error answers, for the simplejwt-compatible routes
 * (docs/simplejwt-api.md). Texts are DRF 3.14's and simplejwt 5.2's own: clients written for them
 * may match on them. The gateway's catalogue errors are mapped onto these shapes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayError } from '../errors.js'

export type DrfBody = Record<string, unknown>

/** An answer in DRF's shape, thrown by the simplejwt routes and sent as is. */
export class DrfError extends Error {
  override name = 'DrfError'
  constructor (readonly statusCode: number, readonly body: DrfBody, readonly headers: Record<string, string> = {}) {
    super(typeof body.detail === 'string' ? body.detail : 'invalid request')
  }
}

export const DRF_TEXT = {
  required: 'This field is required.',
  blank: 'This field may not be blank.',
  null: 'This field may not be null.',
  invalidString: 'Not a valid string.',
  noActiveAccount: 'No active account found with the given credentials',
  tokenNotValid: 'Token is invalid or expired',
  notAuthenticated: 'Authentication credentials were not provided.',
  permissionDenied: 'You do not have permission to perform this action.',
  notFound: 'Not found.',
  malformed: 'Malformed request.',
  serverError: 'A server error occurred.',
  unavailable: 'Service temporarily unavailable, try again later.'
} as const

/** DRF's Throttled detail: "Request was throttled. Expected available in N second(s)." */
export function throttledDetail (wait: number): string {
  return `Request was throttled. Expected available in ${wait} ${wait === 1 ? 'second' : 'seconds'}.`
}

/** Python's name of a JSON value's type, as DRF's "Expected a dictionary, but got list." says it. */
function pythonType (value: unknown): string {
  if (value === null) return 'NoneType'
  if (Array.isArray(value)) return 'list'
  if (typeof value === 'string') return 'str'
  if (typeof value === 'boolean') return 'bool'
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float'
  return 'dict'
}

export interface FieldSpec { name: string, required: boolean, maxLength: number, trim?: boolean }

/**
 * DRF CharField validation of a body, every field at once: `{"field": ["This field is required."]}`.
 * Numbers are taken as strings (as CharField does); a form field sent twice counts by its last value.
 */
export function charFields (body: unknown, specs: readonly FieldSpec[]): Record<string, string | undefined> {
  const data = body === undefined ? {} : body
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new DrfError(400, { non_field_errors: [`Invalid data. Expected a dictionary, but got ${pythonType(data)}.`] })
  }
  const errors: Record<string, string[]> = {}
  const values: Record<string, string | undefined> = {}
  for (const spec of specs) {
    let raw = (data as Record<string, unknown>)[spec.name]
    if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) raw = raw.at(-1)
    if (raw === undefined) {
      if (spec.required) errors[spec.name] = [DRF_TEXT.required]
      continue
    }
    if (raw === null) { errors[spec.name] = [DRF_TEXT.null]; continue }
    if (typeof raw !== 'string' && typeof raw !== 'number') { errors[spec.name] = [DRF_TEXT.invalidString]; continue }
    const text = String(raw)
    const value = spec.trim === false ? text : text.trim()
    if (value.trim() === '') { errors[spec.name] = [DRF_TEXT.blank]; continue }
    if (value.length > spec.maxLength) { errors[spec.name] = [`Ensure this field has no more than ${spec.maxLength} characters.`];
      continue }
    values[spec.name] = value
  }
  if (Object.keys(errors).length > 0) throw new DrfError(400, errors)
  return values
}

/** The DRF answer of a gateway error. */
export function drfErrorOf (error: GatewayError): DrfError {
  const retryAfter = error.headers['retry-after']
  switch (error.code) {
    case 'invalid_credentials':
      return new DrfError(401, { detail: DRF_TEXT.noActiveAccount })
    case 'token_missing':
      return new DrfError(401, { detail: DRF_TEXT.notAuthenticated })
    case 'token_invalid':
    case 'token_expired':
    case 'token_revoked':
    case 'token_reused':
      return new DrfError(401, { detail: DRF_TEXT.tokenNotValid, code: 'token_not_valid' })
    case 'forbidden':
    case 'csrf_rejected':
      return new DrfError(403, { detail: DRF_TEXT.permissionDenied })
    case 'invalid_dpop_proof':
    case 'use_dpop_nonce':
      // RFC 9449 section 5: a token request with a bad proof is a 400 naming the DPoP error.
      return new DrfError(
        400,
        { detail: error.message, code: error.code },
        error.headers['dpop-nonce'] !== undefined ? { 'dpop-nonce': error.headers['dpop-nonce'] } : {}
      )
    case 'not_found':
      return new DrfError(404, { detail: DRF_TEXT.notFound })
    case 'rate_limited':
    case 'account_locked': {
      const wait = Math.max(0, Number.parseInt(retryAfter ?? '60', 10) || 0)
      return new DrfError(429, { detail: throttledDetail(wait) }, { 'retry-after': String(wait) })
    }
    case 'mfa_required':
      // simplejwt has no second step: DRF's PermissionDenied shape, with what the next step needs (docs/mfa.md).
      return new DrfError(403, { detail: 'A second factor is required.', code: 'mfa_required', ...error.extensions })
    case 'store_unavailable':
    case 'shutting_down':
      return new DrfError(error.statusCode, { detail: DRF_TEXT.unavailable }, retryAfter !== undefined ? { 'retry-after': retryAfter } : {})
    default:
      if (error.statusCode >= 500) return new DrfError(error.statusCode, { detail: DRF_TEXT.serverError })
      if (error.statusCode === 413) return new DrfError(413, { detail: 'Request body too large.' })
      return new DrfError(400, { detail: DRF_TEXT.malformed })
  }
}

/** Sends a DRF answer; every 401 carries simplejwt's challenge. */
export function sendDrf (error: DrfError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.code(error.statusCode).headers(error.headers)
    .header('content-type', 'application/json')
    .header('cache-control', 'no-store')
  // A body left unread would have to be drained before the connection could serve another request.
  if (!request.raw.complete) reply.header('connection', 'close')
  if (error.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="api"')
  // Pre-serialized: the shapes vary by status, and no response schema may reshape them.
  return reply.send(JSON.stringify(error.body))
}
