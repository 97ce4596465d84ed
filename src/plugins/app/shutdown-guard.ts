/**
 * Graceful shutdown, inside the app: once closing starts, requests still arriving on open
 * keep-alive connections are answered 503 `shutting_down` with `Connection: close` (problem+json)
 * while in-flight requests finish. server.ts triggers the close on SIGTERM (close-with-grace).
 */
import fp from 'fastify-plugin'
import { gatewayError } from '../../errors.js'

export default fp(async (fastify) => {
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  // Synchronous hooks on the hot path: no promise per request.
  fastify.addHook('onRequest', (_request, reply, done) => {
    if (!closing) { done(); return }
    reply.header('connection', 'close')
    done(gatewayError('shutting_down', undefined, { 'retry-after': '1' }))
  })
}, { name: 'shutdown-guard' })
