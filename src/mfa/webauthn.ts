/**
 * Passkeys as a second factor. Not implemented yet: no passkey can be registered, so no
 * assertion passes.
 */
import type { FastifyRequest } from 'fastify'
import type { Factor } from './factors.js'

export async function checkPasskeyAssertion (
  _request: FastifyRequest,
  _userId: string,
  _factors: Factor[],
  _response: unknown
): Promise<boolean> {
  return false
}
