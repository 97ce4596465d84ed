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
  fastify.addHook('onRequest', async (_request, reply) => {
    if (!closing) return
    reply.header('connection', 'close')
    throw gatewayError('shutting_down', undefined, { 'retry-after': '1' })
  })
}, { name: 'shutdown-guard' })
