/**
 * Client authentication of every OAuth endpoint (the token endpoint's grants, introspection,
 * revocation): the per-IP failure count of src/clients/client-auth-failures.ts, with the attempt
 * counted *before* the secret is compared, as logins are: parallel guesses cannot slip past the
 * limit, and a right secret gives its reservation back.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { applyWindowCount, LIMIT_WINDOW_MS } from '../limits/limit-headers.js'
import { clientBucket } from '../limits/client-ip.js'
import { securityEvent } from '../lib/security-events.js'
import { Id } from '../tokens/claims.js'
import { Compile } from 'typebox/compile'
import { secretDigest, secretMatches } from './client-secret.js'
import { OAuthError, oauthErrors } from './oauth-error.js'

const isId = Compile(Id)

export interface PresentedClient { clientId: string, clientSecret: string }

/** A client that proved its secret: its id and the scopes it is registered with. */
export interface AuthenticatedClient { clientId: string, scopes: string[], dpopBound: boolean }

const dummyDigest = secretDigest('-', 'no such client')

function limited (retryAfterSeconds: number): OAuthError {
  const retry = String(retryAfterSeconds)
  return new OAuthError(429, 'rate_limited', `too many failed client authentications; retry in ${retry} seconds`, { 'retry-after': retry })
}

/**
 * Checks the presented client credentials: the client IP's attempt is reserved, the secret
 * compared (in constant time, unknown clients included), a success releases the reservation.
 * @throws OAuthError 401 `invalid_client`, 429 `rate_limited`, 503 (Redis)
 */
export async function authenticateClient (fastify: FastifyInstance, request: FastifyRequest,
  presented: PresentedClient): Promise<AuthenticatedClient> {
  const knownId = isId.Check(presented.clientId)
  // Reserved before any secret is compared (and before the record is read): a burst of wrong
  // secrets cannot carry a right one past the limit.
  const [attempt, record] = await Promise.all([
    fastify.clientAuthFailures.reserve(clientBucket(request.ip)),
    knownId ? fastify.clients.credentials(presented.clientId) : Promise.resolve(null)
  ])
  const idField = knownId ? { client_id: presented.clientId } : {}
  if (!attempt.reserved) {
    securityEvent(request, 'rate_limited', { limit: 'client_auth', ...idField })
    throw limited(attempt.retryAfterSeconds)
  }
  // The digest is computed for unknown clients too, so both failures cost the same.
  const matches = secretMatches(presented.clientId, presented.clientSecret, record?.secretDigest ?? dummyDigest)
  if (record === null || !matches) {
    securityEvent(request, 'client_auth_failed', { ...idField, reason: record === null ? 'unknown_client' : 'wrong_secret',
      failures: attempt.count })
    throw oauthErrors.invalidClient()
  }
  await attempt.release()
  return { clientId: presented.clientId, scopes: record.scopes, dpopBound: record.dpopBound }
}

/** Counts an authenticated client's request against API_CLIENT_LIMIT (429 past it; 401 when the client was deleted meanwhile). */
export async function countClientRequest (fastify: FastifyInstance, request: FastifyRequest, reply: FastifyReply,
  clientId: string): Promise<void> {
  const window = await fastify.clients.checkCounted(clientId, LIMIT_WINDOW_MS)
  if (!window.alive) throw oauthErrors.invalidClient()
  const over = applyWindowCount(reply, { limit: fastify.config.limits.apiPerClient, count: window.count, ttlMs: window.ttlMs })
  if (over !== null) {
    securityEvent(request, 'rate_limited', { client_id: clientId, limit: 'api_client' })
    throw new OAuthError(429, 'rate_limited', over.message, over.headers)
  }
}
