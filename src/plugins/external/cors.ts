/** CORS for exactly CORS_ORIGINS, with credentials; any other origin gets no CORS headers. */
import fp from 'fastify-plugin'
import cors from '@fastify/cors'

export default fp(async (fastify) => {
  const origins = fastify.config.corsOrigins
  await fastify.register(cors, {
    // A foreign origin gets no CORS header at all (not even Allow-Credentials or Allow-Methods).
    origin: (origin, callback) => { callback(null, origin !== undefined && origins.includes(origin) ? origin : false) },
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id', 'dpop'],
    exposedHeaders: [
      'x-request-id',
      'retry-after',
      'x-ratelimit-limit',
      'x-ratelimit-remaining',
      'x-ratelimit-reset',
      'dpop-nonce',
      'www-authenticate'
    ],
    maxAge: 600,
    strictPreflight: true
  })
}, { name: 'cors', dependencies: ['config'] })
