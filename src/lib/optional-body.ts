/**
 * Routes whose JSON body is optional (refresh in cookie mode, logout). Fastify validates a missing
 * body as `null`, which an object schema refuses; this preValidation hook turns "no body at all"
 * into `{}` so the schema still checks every body that was sent. A body of `null` stays invalid.
 */
import type { FastifyRequest } from 'fastify'

export async function emptyBodyAsObject (request: FastifyRequest): Promise<void> {
  if (request.body === undefined) request.body = {}
}
