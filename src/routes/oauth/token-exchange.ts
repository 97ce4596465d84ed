/**
 * Token exchange (RFC 8693) at `POST /oauth/token`: a machine client with the scope
 * `token-exchange` presents a user's live access token (`subject_token`) and an upstream of the
 * route table (`audience`), and gets a delegated access token for that user. An upstream behind the
 * gateway never sees the user's token (the proxy removes it): it presents the identity assertion
 * of the user's request instead (`X-Gateway-Assertion`, subject_token_type `...:token-type:jwt`),
 * which names the user's session. The issued token carries:
 *
 * - the user's identity and session (`sub`, `sid`, `username`, `roles`), `act: {"sub":
 *   "client:<id>"}`, `upstream` = the audience, and the narrowed `scope` when one was asked for;
 * - short-lived (DELEGATED_TOKEN_MAX_TTL, never past ACCESS_TOKEN_TTL nor a subject access token's `exp`),
 *   no refresh token;
 * - bound to the key of the request's DPoP proof (`cnf.jkt`, answered as `token_type: DPoP`) when it
 *   carries one, as every token of /oauth/token is; a `dpop_bound` client must send one;
 * - checked on every request like the user's own token (session alive, user active, live roles),
 *   so it dies with the user's session; on top of that the proxy lets it reach only the audience's
 *   routes (src/proxy/delegated-caller.ts), and the gateway's own endpoints refuse it.
 *
 * What it may do is therefore never more than the user: the user's live roles, one upstream, and
 * with a scope only the routes and methods granting it. A delegated token is not a subject token
 * of a further exchange, and an actor token is not accepted (the authenticated client is the actor).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Static } from 'typebox'
import { GatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { parseScope } from '../../clients/scopes.js'
import { ACCESS_TOKEN_TYPE, type ExchangeResponseSchema, type TokenRequestSchema } from '../../clients/client-schemas.js'
import { authenticateClient, countClientRequest, type PresentedClient } from '../../clients/client-authentication.js'
import { given } from '../../clients/presented-credentials.js'
import { oauthErrors } from '../../clients/oauth-error.js'
import { OAUTH_SCOPES } from '../../plugins/app/delegation.js'
import { nowSeconds } from '../../tokens/token-service.js'
import type { AccessClaims } from '../../tokens/claims.js'

type TokenRequest = Static<typeof TokenRequestSchema>

/** An upstream behind the gateway never sees the user's token: it presents the request's X-Gateway-Assertion as this type. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
type SubjectType = typeof ACCESS_TOKEN_TYPE | typeof JWT_TOKEN_TYPE
type ExchangeResponse = Static<typeof ExchangeResponseSchema>

/** RFC 6749 3.1: a parameter sent without a value is treated as omitted. */

/**
 * The live user behind the subject token, or invalid_request (RFC 8693 2.2.2) when there is none.
 * An access token is accepted as the proxy accepts it; a gateway assertion (the `jwt` type) is
 * verified, then its session goes through the same check as an access token's.
 */
async function subjectOf (fastify: FastifyInstance, request: FastifyRequest, token: string, type: SubjectType): Promise<AccessClaims> {
  try {
    if (type === JWT_TOKEN_TYPE) {
      const claims = await fastify.tokens.verifyUserAssertion(token, [...fastify.delegation().upstreams])
      return await fastify.acceptUserClaims(request, claims, { record: false })
    }
    const live = await fastify.acceptAccessToken(request, token, { record: false })
    if (live.kind === 'client') throw oauthErrors.invalidRequest('subject_token must be a user\'s access token')
    if (live.claims.act !== undefined) throw oauthErrors.invalidRequest('subject_token is already a delegated token')
    // A sender-constrained token is good only with its key or cookie, which the exchanging client
    // does not hold: it exchanges the gateway assertion of the user's request instead (docs/dpop.md).
    if (live.claims.cnf !== undefined || live.claims.fgp !== undefined) {
      throw oauthErrors.invalidRequest('subject_token is sender-constrained (DPoP or fingerprint cookie): exchange the gateway assertion')
    }
    return live.claims
  } catch (err) {
    // A refused token (401) is the client's error; Redis or user-state failures stay 503.
    if (err instanceof GatewayError && err.statusCode === 401) throw oauthErrors.invalidRequest('subject_token is not a live access token')
    throw err
  }
}

export async function tokenExchange (fastify: FastifyInstance, request: FastifyRequest, reply: FastifyReply, body: TokenRequest,
  presented: PresentedClient): Promise<ExchangeResponse> {
  const client = await authenticateClient(fastify, request, presented)
  if (!client.scopes.includes(OAUTH_SCOPES.exchange)) throw oauthErrors.unauthorizedClient(
    `the client lacks the scope ${OAUTH_SCOPES.exchange}`)

  const subjectToken = given(body.subject_token)
  const audience = given(body.audience)
  if (subjectToken === undefined) throw oauthErrors.invalidRequest('subject_token is required')
  const subjectType = given(body.subject_token_type)
  if (subjectType !== ACCESS_TOKEN_TYPE && subjectType !== JWT_TOKEN_TYPE) throw oauthErrors.invalidRequest(
    `subject_token_type must be ${ACCESS_TOKEN_TYPE} (or ${JWT_TOKEN_TYPE} for a gateway assertion)`)
  const requested = given(body.requested_token_type)
  if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) throw oauthErrors.invalidRequest(
    `requested_token_type must be ${ACCESS_TOKEN_TYPE}`)
  if (given(body.actor_token) !== undefined || given(body.actor_token_type) !== undefined) throw oauthErrors.invalidRequest(
    'actor_token is not supported: the authenticated client is the actor')
  if (audience === undefined) throw oauthErrors.invalidRequest('audience (an upstream) is required')
  if (!fastify.delegation().upstreams.has(audience)) throw oauthErrors.invalidTarget('audience is not an upstream of the gateway')
  let scope: string | undefined
  const asked = given(body.scope)
  if (asked !== undefined) {
    const tokens = parseScope(asked)
    const known = fastify.delegation().scopesOf(audience)
    if (tokens === null || !tokens.every((s) => known.has(s))) throw oauthErrors.invalidScope(
      'scope must name scopes of the audience\'s routes')
    scope = tokens.join(' ')
  }

  // A proof binds the delegated token to its key, as at the client credentials grant; a bound client must bring one.
  const jkt = await fastify.dpop.tokenProof(request, { required: client.dpopBound })
  // Exchanges count against the client's limit like its token requests.
  await countClientRequest(fastify, request, reply, client.clientId)
  const subject = await subjectOf(fastify, request, subjectToken, subjectType)

  // Never past an access token it was exchanged from (an assertion lives a minute: the session decides).
  const ttl = subjectType === ACCESS_TOKEN_TYPE ? Math.min(fastify.delegation().ttl, subject.exp - nowSeconds()) : fastify.delegation().ttl
  if (ttl < 1) throw oauthErrors.invalidRequest('subject_token is not a live access token')
  const issued = await fastify.tokens.signDelegated(subject, { clientId: client.clientId, upstream: audience, scope, jkt }, ttl)
  securityEvent(request, 'token_exchanged', {
    user_id: subject.sub, client_id: client.clientId, audience, subject_type: subjectType, session_id: subject.sid, jti: issued.jti,
      ...(scope !== undefined ? { scope } : {}), ...(jkt !== undefined ? { dpop: true } : {})
  })
  return {
    access_token: issued.token,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: jkt !== undefined ? 'DPoP' : 'Bearer',
    expires_in: ttl,
    ...(scope !== undefined ? { scope } : {})
  }
}
