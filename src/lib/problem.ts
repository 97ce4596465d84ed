/**
 * Errors as the client sees them: any thrown value mapped onto the catalogue (src/errors.ts) and
 * sent as problem+json (RFC 9457). Used by the error handler (src/plugins/app/error-handler.ts) and
 * by every path that answers an error itself (the proxy, forward authentication, OAuth).
 */
import type { FastifyError } from 'fastify'
import type { AnyReply, AnyRequest } from './request-types.js'
import { GatewayError, gatewayError, problemType, type Problem } from '../errors.js'

/** Fastify's own client errors, by code. */
const FASTIFY_CODES: Record<string, Parameters<typeof gatewayError>[0]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'invalid_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_TYPE: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request'
}

/** Maps any thrown value onto the catalogue. */
export function toGatewayError (err: unknown): GatewayError {
  if (err instanceof GatewayError) return err
  const e = err as Partial<FastifyError> & { validation?: unknown[] }
  if (e.validation !== undefined) {
    const context = (e as { validationContext?: string }).validationContext ?? 'request'
    const first = e.validation[0] as { instancePath?: string, message?: string } | undefined
    return gatewayError('invalid_request', `${context}${first?.instancePath ?? ''} ${first?.message ?? 'is invalid'}`)
  }
  const mapped = e.code !== undefined ? FASTIFY_CODES[e.code] : undefined
  if (mapped !== undefined) return gatewayError(mapped)
  if (e.statusCode === 429) return gatewayError('rate_limited')
  if (e.statusCode === 404) return gatewayError('not_found')
  if (e.statusCode === 413) return gatewayError('payload_too_large')
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return gatewayError('invalid_request')
  return gatewayError('internal_error', undefined, {}, err)
}

/** `instance`: the path the problem is about, when not the request's own (forward authentication). */
export function problemOf (error: GatewayError, request: AnyRequest, instance = request.url.split('?')[0] ?? request.url): Problem {
  return {
    type: problemType(error.code),
    title: error.title,
    status: error.statusCode,
    code: error.code,
    // A 5xx says only its title: causes stay in the log.
    ...(error.statusCode < 500 && error.message !== error.title ? { detail: error.message } : {}),
    instance,
    request_id: request.id,
    ...error.extensions
  }
}

/** `as`: another status to answer with and another `instance` (forward authentication, src/routes/forward-auth/). */
export function sendProblem (error: GatewayError, request: AnyRequest, reply: AnyReply,
  as: { status?: number, instance?: string } = {}): void {
  reply.code(as.status ?? error.statusCode).headers(error.headers)
    .header('content-type', 'application/problem+json; charset=utf-8')
    .header('cache-control', 'no-store')
  // A body left unread would have to be drained before the connection could serve another request.
  if (!request.raw.complete) reply.header('connection', 'close')
  // A challenge of its own (a DPoP refusal: src/dpop/dpop-errors.ts; RFC 9470 step-up) is kept as the error gave it.
  if (error.statusCode === 401 && error.headers['www-authenticate'] === undefined) {
    reply.header('www-authenticate', error.concernsPresentedToken
      ? `Bearer realm="auth-gateway", error="invalid_token", error_description="${error.title}"`
      : 'Bearer realm="auth-gateway"')
  }
  reply.send(problemOf(error, request, as.instance))
}
