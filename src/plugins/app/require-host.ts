/**
 * HTTP/1.1 requires a Host header (RFC 9112 3.2). Node's own refusal is a bare 400 without the
 * gateway's security headers; with `requireHostHeader: false` (src/server-options.ts) the gateway
 * refuses it here instead: 400 `invalid_request` problem+json, after helmet set its headers.
 */
import fp from 'fastify-plugin'
import { gatewayError } from '../../errors.js'

export default fp(async (fastify) => {
  fastify.addHook('onRequest', (request, reply, done) => {
    const { httpVersionMajor, httpVersionMinor } = request.raw
    if (request.headers.host === undefined && httpVersionMajor === 1 && httpVersionMinor >= 1) {
      reply.header('connection', 'close')
      done(gatewayError('invalid_request', 'the Host header is required'))
      return
    }
    done()
  })
}, { name: 'require-host', dependencies: ['helmet'] })
