/** Session management of the caller: logout, logout-all, list, and revoke one (docs/tokens-and-sessions.md). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { clearRefreshCookie, REFRESH_COOKIE } from '../../lib/refresh-cookie.js'
import { clearFingerprint, fingerprintCookieName } from '../../dpop/fingerprint.js'
import { emptyBodyAsObject } from '../../lib/optional-body.js'
import { acceptEmptyJsonBody } from '../../lib/lenient-json.js'
import { tokenFailureLimit } from '../../limits/token-failure-limit.js'
import { logOut, logOutAll } from '../../auth/logout-flow.js'
import { NoContent, RefreshBodySchema, SessionListSchema, problems } from '../../schemas.js'
import { Id } from '../../tokens/claims.js'
import { Compile } from 'typebox/compile'

const isId = Compile(Id)

const sessions: FastifyPluginAsyncTypebox = async (fastify) => {
  const { cookieSecure } = fastify.config
  const bearer = { security: [{ bearer: [] }], tags: ['sessions'] }

  // A missing body never fails a logout, whatever its Content-Type says.
  acceptEmptyJsonBody(fastify)
  // Refused tokens count per client IP (429 past PUBLIC_IP_LIMIT).
  fastify.addHook('preHandler', tokenFailureLimit(fastify).guarded(fastify.authenticate))

  fastify.post('/auth/logout', {
    // The body is optional: no body at all is `{}`.
    preValidation: emptyBodyAsObject,
    schema: {
      ...bearer,
      summary: "Revoke the caller's session (every token of it)",
      body: RefreshBodySchema,
      response: { 204: NoContent, ...problems(400, 401, 429, 503) }
    }
  }, async (request, reply) => {
    // A refresh token sent along (body or cookie) of another of the caller's sessions goes too.
    await logOut(request, request.body?.refresh ?? request.cookies[REFRESH_COOKIE])
    if (request.cookies[REFRESH_COOKIE] !== undefined) clearRefreshCookie(reply, cookieSecure)
    if (request.cookies[fingerprintCookieName(cookieSecure)] !== undefined) clearFingerprint(reply, cookieSecure)
    return reply.code(204).send(null)
  })

  fastify.post('/auth/logout-all', {
    schema: { ...bearer, summary: 'Revoke every session of the caller', response: { 204: NoContent, ...problems(401, 429, 503) } }
  }, async (request, reply) => {
    await logOutAll(request)
    if (request.cookies[REFRESH_COOKIE] !== undefined) clearRefreshCookie(reply, cookieSecure)
    if (request.cookies[fingerprintCookieName(cookieSecure)] !== undefined) clearFingerprint(reply, cookieSecure)
    return reply.code(204).send(null)
  })

  fastify.get('/auth/sessions', {
    schema: { ...bearer, summary: "List the caller's sessions", response: { 200: SessionListSchema, ...problems(401, 429, 503) } }
  }, async (request) => {
    const auth = request.auth!
    const list = await fastify.sessions.list(auth.sub)
    return { sessions: list.map((s) => ({ ...s, current: s.id === auth.sid })) }
  })

  fastify.delete('/auth/sessions/:id', {
    schema: {
      ...bearer,
      summary: 'Revoke one of the caller\'s sessions',
      params: Type.Object({ id: Type.String({ maxLength: 128 }) }),
      response: { 204: NoContent, ...problems(401, 404, 429, 503) }
    }
  }, async (request, reply) => {
    const auth = request.auth!
    const { id } = request.params
    // Another user's session id is simply not among the caller's: 404 either way.
    if (!isId.Check(id) || !await fastify.sessions.revoke(auth.sub, id)) throw gatewayError('not_found', 'no such session')
    securityEvent(request, 'session_revoked', { user_id: auth.sub, session_id: id, reason: 'user' })
    return reply.code(204).send(null)
  })
}

export default sessions
