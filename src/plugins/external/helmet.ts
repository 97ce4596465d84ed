/**
 * Security headers on every answer (docs/endpoints.md). The gateway serves no pages but /docs, the
 * dashboard and the demo (which set their own CSP).
 *
 * helmet computes the headers from the options in src/lib/security-headers.ts; since they are the same for every answer they
 * are computed once at start-up and set by one synchronous hook (@fastify/helmet would rebuild
 * helmet's middleware and parse the CSP directives on every request).
 */
import fp from 'fastify-plugin'
import { SECURITY_HEADERS } from '../../lib/security-headers.js'

/** Names and values, set one by one: `reply.headers` would make an array of the names per request. */
const NAMES = Object.keys(SECURITY_HEADERS)
const VALUES = NAMES.map((name) => SECURITY_HEADERS[name]!)

export default fp(async (fastify) => {
  fastify.addHook('onRequest', (_request, reply, done) => {
    for (let i = 0; i < NAMES.length; i++) reply.header(NAMES[i]!, VALUES[i])
    done()
  })
}, { name: 'helmet' })
