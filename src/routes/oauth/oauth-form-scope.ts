/**
 * What the OAuth endpoints beyond the token endpoint (introspection, revocation) share with it
 * (src/routes/oauth/token.ts): only `application/x-www-form-urlencoded` bodies, small; every answer
 * `Cache-Control: no-store`; errors as RFC 6749 section 5.2 JSON; client authentication by HTTP
 * Basic or `client_id` + `client_secret` in the body, never both.
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance } from 'fastify'
import { oauthErrors, sendOAuthError, toOAuthError } from '../../clients/oauth-error.js'
import type { PresentedClient } from '../../clients/client-authentication.js'
import { basicCredentials, TOKEN_BODY_LIMIT } from './token.js'

/** RFC 6749 3.1: a parameter sent without a value is treated as omitted. */
export const given = (value: string | undefined): string | undefined => value === '' ? undefined : value

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

export interface ClientAuthParams { client_id?: string | undefined, client_secret?: string | undefined }

/**
 * The client credentials a request presents (RFC 6749 2.3), or null when it presents none: no
 * Authorization header and no client_secret (a client_id alone authenticates nothing).
 */
export function optionalCredentials (authorization: string | undefined, body: ClientAuthParams): PresentedClient | null {
  const bodyId = given(body.client_id)
  const bodySecret = given(body.client_secret)
  if (authorization !== undefined) {
    const basic = basicCredentials(authorization)
    if (basic === null) throw oauthErrors.invalidClient('unsupported or malformed client authentication (use HTTP Basic)')
    // A client_id alone in the body may name the same client (RFC 6749 3.2.1); a second secret may not.
    if (bodySecret !== undefined || (bodyId !== undefined && bodyId !== basic.clientId)) {
      throw oauthErrors.invalidRequest('more than one client authentication method')
    }
    return basic
  }
  if (bodySecret === undefined) return null
  if (bodyId === undefined) throw oauthErrors.invalidClient('client_secret without client_id')
  return { clientId: bodyId, clientSecret: bodySecret }
}

/** The client credentials a request must present. */
export function requiredCredentials (authorization: string | undefined, body: ClientAuthParams): PresentedClient {
  const presented = optionalCredentials(authorization, body)
  if (presented === null) throw oauthErrors.invalidClient('client authentication required')
  return presented
}

