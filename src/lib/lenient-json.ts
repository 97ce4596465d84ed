/**
 * JSON bodies of routes whose body is optional (logout, logout-all, session revocation, refresh in
 * cookie mode): many HTTP clients send `Content-Type: application/json` with no body at all, and a
 * logout must never fail on that. An empty body parses as "no body"; anything else goes through
 * Fastify's own JSON parser (prototype-poisoning checks included). Registered per route plugin,
 * so every other route keeps refusing an empty JSON body.
 */
import type { FastifyInstance } from 'fastify'

export function acceptEmptyJsonBody (fastify: FastifyInstance): void {
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) {
      done(null, undefined)
      return
    }
    // the default parser answers through done (the synchronous form)
    void parseJson(request, body as string, done)
  })
}
