/**
 * The one error handler: every error becomes problem+json (RFC 9457) from the catalogue.
 * Library errors are mapped onto catalogue codes; a 5xx never shows its cause to the client.
 */
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { gatewayError } from '../../errors.js'
import { sendProblem, toGatewayError } from '../../lib/problem.js'
import { wasRefusedPath } from '../../proxy/normalize-path.js'

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
