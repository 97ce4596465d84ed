/** Liveness, readiness and the public keys (docs/endpoints.md). None of them needs a token. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { problems } from '../../schemas.js'

const Status = Type.Object({ status: Type.String() })

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/healthz', {
    schema: { tags: ['health'], summary: 'Liveness: 200 while the process runs', response: { 200: Status } }
  }, async () => ({ status: 'ok' }))

  // Whether this process can serve: 200 once started, 503 shutting_down from SIGTERM on (the
  // shutdown guard answers every request so while draining). Redis is left out on purpose: it is
  // shared, so its outage would take every replica out of the Service at once (docs/operations.md, "Readiness").
  fastify.get('/readyz', {
    schema: {
      tags: ['health'],
      summary: 'Readiness: 200 while started and not draining, 503 from SIGTERM on; Redis does not affect it',
      response: { 200: Status, ...problems(503) }
    }
  }, async () => ({ status: 'ready' }))

  fastify.get('/.well-known/jwks.json', {
    schema: {
      tags: ['health'],
      summary: 'The public keys that verify gateway tokens and assertions',
      response: {
        200: Type.Object({
          keys: Type.Array(Type.Object({
            kty: Type.Literal('EC'), crv: Type.Literal('P-256'), x: Type.String(), y: Type.String(),
            kid: Type.String(), alg: Type.Literal('ES256'), use: Type.Literal('sig')
          }))
        })
      }
    }
  }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300')
    return fastify.keys.publicJwks
  })
}

export default health
