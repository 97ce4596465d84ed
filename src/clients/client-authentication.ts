/**
 * Client authentication for the OAuth endpoints beyond the client credentials grant (token
 * introspection, revocation, token exchange): the same credentials and per-IP failure count as
 * `/oauth/token` (src/routes/oauth/token.ts), with the attempt counted *before* the secret is
 * compared, as logins are (src/limits/login-lockout.ts): an attempt is reserved on the client IP's
 * failure counter atomically, so parallel guesses cannot slip past the limit, and a right secret
 * gives its reservation back.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { applyWindowCount, LIMIT_WINDOW_MS } from '../limits/limit-headers.js'
import { clientBucket } from '../limits/client-ip.js'
import { securityEvent } from '../lib/security-events.js'
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import type { RedisClient } from '../sessions/session-store.js'
import { Id } from '../tokens/claims.js'
import { Compile } from 'typebox/compile'
import { ClientAuthFailures } from './client-auth-failures.js'
import { secretDigest, secretMatches } from './client-secret.js'
import { OAuthError, oauthErrors } from './oauth-error.js'

const isId = Compile(Id)

/**
 * KEYS[1] the IP's failure counter. ARGV[1] limit, ARGV[2] window (ms).
 * Returns {1, count} when the attempt is reserved, {0, ttl ms} when the IP is over the limit.
 */
const reserveLua = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, n}
`

/** Gives back the reservation of an attempt that was not a failure. */
const releaseLua = `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 1
`

interface ReserveCommands {
  gwReserveClientAuth: (key: string, limit: number, windowMs: number) => Promise<[number, number]>
  gwReleaseClientAuth: (key: string) => Promise<number>
}

export interface PresentedClient { clientId: string, clientSecret: string }

/** A client that proved its secret: its id and the scopes it is registered with. */
export interface AuthenticatedClient { clientId: string, scopes: string[] }

function commands (redis: RedisClient): RedisClient & ReserveCommands {
  if (!('gwReserveClientAuth' in redis)) {
    redis.defineCommand('gwReserveClientAuth', { numberOfKeys: 1, lua: reserveLua })
    redis.defineCommand('gwReleaseClientAuth', { numberOfKeys: 1, lua: releaseLua })
  }
  return redis as RedisClient & ReserveCommands
}

const dummyDigest = secretDigest('-', 'no such client')

function limited (ttlMs: number): OAuthError {
  const retry = String(Math.max(1, Math.ceil(ttlMs / 1000)))
  return new OAuthError(429, 'rate_limited', `too many failed client authentications; retry in ${retry} seconds`, { 'retry-after': retry })
}

/**
 * Checks the presented client credentials: the client IP's attempt is reserved, the secret
 * compared (in constant time, unknown clients included), a success releases the reservation.
 * @throws OAuthError 401 `invalid_client`, 429 `rate_limited`, 503 (Redis)
 */
export async function authenticateClient (fastify: FastifyInstance, request: FastifyRequest, presented: PresentedClient): Promise<AuthenticatedClient> {
  const redis = commands(fastify.redis)
  const knownId = isId.Check(presented.clientId)
  const key = ClientAuthFailures.key(clientBucket(request.ip))
  const failures = fastify.clientAuthFailures
  const [[reserved, value], record] = await Promise.all([
    orStoreUnavailable(redis.gwReserveClientAuth(key, failures.limit, failures.windowMs)),
    knownId ? fastify.clients.credentials(presented.clientId) : Promise.resolve(null)
  ])
  const idField = knownId ? { client_id: presented.clientId } : {}
  if (reserved === 0) {
    securityEvent(request, 'rate_limited', { limit: 'client_auth', ...idField })
    throw limited(value)
  }
  // The digest is computed for unknown clients too, so both failures cost the same.
  const matches = secretMatches(presented.clientId, presented.clientSecret, record?.secretDigest ?? dummyDigest)
  if (record === null || !matches) {
    securityEvent(request, 'client_auth_failed', { ...idField, reason: record === null ? 'unknown_client' : 'wrong_secret', failures: value })
    throw oauthErrors.invalidClient()
  }
  await orStoreUnavailable(redis.gwReleaseClientAuth(key))
  return { clientId: presented.clientId, scopes: record.scopes }
}

/** Counts an authenticated client's request against API_CLIENT_LIMIT (429 past it; 401 when the client was deleted meanwhile). */
export async function countClientRequest (fastify: FastifyInstance, request: FastifyRequest, reply: FastifyReply, clientId: string): Promise<void> {
  const window = await fastify.clients.checkCounted(clientId, LIMIT_WINDOW_MS)
  if (!window.alive) throw oauthErrors.invalidClient()
  const over = applyWindowCount(reply, { limit: fastify.config.limits.apiPerClient, count: window.count, ttlMs: window.ttlMs })
  if (over !== null) {
    securityEvent(request, 'rate_limited', { client_id: clientId, limit: 'api_client' })
    throw new OAuthError(429, 'rate_limited', over.message, over.headers)
  }
}
