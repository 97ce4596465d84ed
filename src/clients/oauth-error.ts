/**
 * Errors of the token endpoint: RFC 6749 section 5.2 JSON (`{"error", "error_description"}`), not
 * problem+json, because OAuth client libraries parse exactly that. Every other gateway error met
 * in the endpoint's scope (validation, body parsing, Redis, limits) is mapped onto one of them.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { toGatewayError } from '../lib/problem.js'
import type { OAUTH_ERROR_CODES } from './client-schemas.js'

export type OAuthErrorCode = typeof OAUTH_ERROR_CODES[number]

export class OAuthError extends Error {
  override name = 'OAuthError'
  constructor (
    readonly statusCode: number,
    readonly error: OAuthErrorCode,
    readonly description?: string,
    readonly headers: Record<string, string> = {}
  ) {
    super(description ?? error)
  }
}

/** `throw oauthError(...)` shorthands for the codes of RFC 6749 5.2. */
export const oauthErrors = {
  invalidRequest: (description: string) => new OAuthError(400, 'invalid_request', description),
  invalidClient: (description = 'client authentication failed') => new OAuthError(401, 'invalid_client', description),
  invalidScope: (description: string) => new OAuthError(400, 'invalid_scope', description),
  unsupportedGrantType: (description: string) => new OAuthError(400, 'unsupported_grant_type', description),
  unauthorizedClient: (description: string) => new OAuthError(400, 'unauthorized_client', description),
  invalidTarget: (description: string) => new OAuthError(400, 'invalid_target', description),
  insufficientScope: (description: string) => new OAuthError(403, 'insufficient_scope', description)
}

/** Any error of the token endpoint's scope as an OAuthError; causes of 5xx stay in the log. */
export function toOAuthError (err: unknown): OAuthError {
  if (err instanceof OAuthError) return err
  const gateway = toGatewayError(err)
  switch (gateway.code) {
    case 'invalid_request':
      // Validation messages name the parameter (a repeated one arrives as an array: "must be string").
      return new OAuthError(400, 'invalid_request', gateway.message !== gateway.title ? gateway.message
        : 'the body must be application/x-www-form-urlencoded')
    case 'payload_too_large':
      return new OAuthError(413, 'invalid_request', 'request body too large')
    case 'rate_limited':
      return new OAuthError(429, 'rate_limited', gateway.message, gateway.headers)
    case 'invalid_dpop_proof':
    case 'use_dpop_nonce':
      // RFC 9449 section 5: 400 naming the DPoP error (with the nonce to use).
      return new OAuthError(400, gateway.code, gateway.message, gateway.headers)
    case 'store_unavailable':
    case 'user_state_unavailable':
    case 'shutting_down':
      return new OAuthError(503, 'temporarily_unavailable', undefined, gateway.headers)
    default:
      return new OAuthError(gateway.statusCode >= 500 ? 500 : gateway.statusCode, gateway.statusCode >= 500 ? 'server_error'
        : 'invalid_request')
  }
}

export function sendOAuthError (error: OAuthError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.code(error.statusCode).headers(error.headers)
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
  // A body left unread (too large) would have to be drained first: close the connection instead.
  if (!request.raw.complete) reply.header('connection', 'close')
  // RFC 6749 5.2: a 401 names the authentication scheme the client should use.
  if (error.statusCode === 401) reply.header('www-authenticate', 'Basic realm="auth-gateway", charset="UTF-8"')
  return reply.send({ error: error.error, ...(error.description !== undefined ? { error_description: error.description } : {}) })
}
