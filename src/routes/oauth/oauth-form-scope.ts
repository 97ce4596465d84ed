/**
 * What every form-encoded OAuth endpoint (token, introspection, revocation) shares: only
 * `application/x-www-form-urlencoded` bodies, small (JSON and anything else is an unsupported
 * media type, i.e. invalid_request); every answer `Cache-Control: no-store`; errors as JSON of
 * RFC 6749 section 5.2. Client credentials: src/clients/presented-credentials.ts.
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance } from 'fastify'
import { sendOAuthError, toOAuthError } from '../../clients/oauth-error.js'

/** Token requests are a few hundred bytes; anything much larger is refused before it is read. */
export const TOKEN_BODY_LIMIT = 8 * 1024

/** Sets up an encapsulated scope for form-encoded OAuth endpoints. */
export async function oauthFormScope (fastify: FastifyInstance): Promise<void> {
  fastify.removeAllContentTypeParsers()
  await fastify.register(formbody, { bodyLimit: TOKEN_BODY_LIMIT })
  fastify.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
  })
  fastify.setErrorHandler((err, request, reply) => {
    const error = toOAuthError(err)
    if (error.statusCode >= 500) request.log.error({ err, error: error.error }, 'oauth request failed')
    return sendOAuthError(error, request, reply)
  })
}
