/**
 * The one error handler: every error becomes problem+json (RFC 9457) from the catalogue.
 * Library errors are mapped onto catalogue codes; a 5xx never shows its cause to the client.
 */
import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { AnyReply, AnyRequest } from '../../lib/request-types.js'
import { GatewayError, gatewayError, problemType, type Problem } from '../../errors.js'
import { wasRefusedPath } from '../../proxy/normalize-path.js'

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
export function sendProblem (error: GatewayError, request: AnyRequest, reply: AnyReply, as: { status?: number, instance?: string } = {}): void {
  reply.code(as.status ?? error.statusCode).headers(error.headers)
    .header('content-type', 'application/problem+json; charset=utf-8')
    .header('cache-control', 'no-store')
  // A body left unread would have to be drained before the connection could serve another request.
  if (!request.raw.complete) reply.header('connection', 'close')
  // A challenge of its own (RFC 9470 step-up) is kept as the error gave it.
  if (error.statusCode === 401 && error.headers['www-authenticate'] === undefined) {
    reply.header('www-authenticate', error.concernsPresentedToken
      ? `Bearer realm="auth-gateway", error="invalid_token", error_description="${error.title}"`
      : 'Bearer realm="auth-gateway"')
  }
  reply.send(problemOf(error, request, as.instance))
}

/** 404 for anything no route matched; 400 for a path refused by normalization. */
export function notFoundHandler (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  sendProblem(
    wasRefusedPath(request.raw) ? gatewayError('invalid_request', 'the request path is not acceptable') : gatewayError('not_found'),
    request, reply)
  return reply
}

export default fp(async (fastify) => {
  fastify.setErrorHandler((err, request, reply) => {
    const error = toGatewayError(err)
    if (error.code === 'store_unavailable') fastify.metrics?.redisErrors.inc()
    if (error.statusCode >= 500) {
      request.log.error({ err: error.cause ?? err, code: error.code }, 'request failed')
    }
    sendProblem(error, request, reply)
    return reply
  })

  // Every answer echoes the request id the upstream and the logs saw.
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
}, { name: 'error-handler' })
