/**
 * The simplejwt-compatible API (docs/simplejwt-api.md): `/api/token/`, `/api/token/refresh/`,
 * `/api/token/verify/`, `/api/token/blacklist/`, `/api/logout/`, `/api/logout-all/` and the legacy
 * alias `/api-token-auth/`. Login, rotation, verification and logout are the flows of `/auth/*`
 * (src/auth/); only the answers differ: simplejwt's bodies and DRF's error shapes. This scope alone
 * parses form bodies and has its own error handler, so `/auth/*` keeps its problem+json and JSON-only bodies.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import formbody from '@fastify/formbody'
import { Counter } from 'prom-client'
import { logIn } from '../../auth/login-flow.js'
import { refreshTokens } from '../../auth/refresh-flow.js'
import { verifyLiveToken } from '../../auth/live-token.js'
import { logOut, logOutAll } from '../../auth/logout-flow.js'
import { gatewayError } from '../../errors.js'
import { charFields, DrfError, drfErrorOf, sendDrf } from '../../lib/drf-errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { tokenFailureLimit } from '../../limits/token-failure-limit.js'
import { toGatewayError } from '../../lib/problem.js'
import {
  DrfDetail,
  DrfMfaRequired,
  drfErrors,
  Empty,
  OptionalRefreshBody,
  RefreshBody,
  TokenObtainBody,
  TokenPair,
  VerifyBody
} from './schemas.js'

/**
 * RFC 9745 `Deprecation` of the legacy alias: deprecated since the gateway's first release of the simplejwt-compatible API
 * (docs/simplejwt-api.md).
 */
export const LEGACY_ALIAS_DEPRECATED_AT = Date.UTC(2026, 0, 1) / 1000
export const LEGACY_ALIAS = '/api-token-auth/'

/**
 * Routing sees normalized paths (src/proxy/normalize-path.ts drops a trailing slash), so the routes
 * are registered without it: `/api/token/` (Django's form) and `/api/token` both reach them.
 */
const route = (path: string): string => path.replace(/\/$/, '')

const LOGIN_FIELDS = [
  { name: 'username', required: true, maxLength: 256 },
  // simplejwt trims passwords too (a CharField); the gateway checks the password as it was typed.
  { name: 'password', required: true, maxLength: 1024, trim: false }
] as const
const REFRESH_FIELD = [{ name: 'refresh', required: true, maxLength: 8192 }] as const
const OPTIONAL_REFRESH_FIELD = [{ name: 'refresh', required: false, maxLength: 8192 }] as const
const TOKEN_FIELD = [{ name: 'token', required: true, maxLength: 8192 }] as const

const simplejwtRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { limits, simplejwt } = fastify.config
  const tags = ['simplejwt']
  // Refused tokens count per client IP, as on /auth/* (429 past PUBLIC_IP_LIMIT).
  const failures = tokenFailureLimit(fastify)

  // Bodies as DRF parses them: JSON (an empty body is `{}`) and form-encoded, nothing else (415).
  await fastify.register(formbody)
  const defaultJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser(['application/json', 'text/plain'])
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, raw, done) => {
    const body = typeof raw === 'string' ? raw : raw.toString('utf8')
    if (body === '') { done(null, {}); return }
    void defaultJson(request, body, (err, parsed) => {
      if (err !== null) done(new DrfError(400, { detail: `JSON parse error - ${err.message}` }), undefined)
      else done(null, parsed)
    })
  })

  fastify.setErrorHandler((err, request, reply) => {
    let answer: DrfError
    if (err instanceof DrfError) {
      answer = err
    } else if ((err as { code?: string }).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      answer = new DrfError(415, { detail: `Unsupported media type "${request.headers['content-type'] ?? ''}" in request.` })
    } else {
      const error = toGatewayError(err)
      if (error.code === 'store_unavailable') fastify.metrics.redisErrors.inc()
      if (error.statusCode >= 500) request.log.error({ err: error.cause ?? err, code: error.code }, 'request failed')
      answer = drfErrorOf(error)
    }
    return sendDrf(answer, request, reply)
  })
  fastify.addHook('onRequest', async (_request, reply) => { reply.header('cache-control', 'no-store') })

  // Body validation is DRF's (every field at once, DRF's texts); the schemas document the bodies.
  const validatedByHandler = { attachValidation: true } as const

  const legacyUses = new Counter({
    name: 'gateway_legacy_endpoint_requests_total',
    help: `Requests to the deprecated simplejwt alias ${LEGACY_ALIAS}, by status`,
    labelNames: ['status'] as const,
    registers: [fastify.metrics.registry]
  })
  const deprecationHeaders = {
    deprecation: `@${LEGACY_ALIAS_DEPRECATED_AT}`,
    link: '</api/token/>; rel="successor-version"',
    ...(simplejwt.sunset !== undefined ? { sunset: simplejwt.sunset } : {})
  }

  async function obtainPair (request: FastifyRequest): Promise<{ refresh: string, access: string, token_type?: 'DPoP' }> {
    const { username, password } = charFields(request.body, LOGIN_FIELDS)
    const jkt = await fastify.dpop.tokenProof(request, { required: fastify.config.dpop.required })
    const session = await logIn(request, username!, password!, { binding: { jkt } })
    return { refresh: session.refresh.token, access: session.access.token, ...(jkt !== undefined ? { token_type: 'DPoP' as const } : {}) }
  }
  const obtainSchema = (summary: string, deprecated: boolean) => ({
    tags, summary, deprecated, body: TokenObtainBody, consumes: ['application/json', 'application/x-www-form-urlencoded'],
    response: { 200: TokenPair, ...drfErrors(400, 401, 415, 429, 502, 503, 504), 403: DrfMfaRequired }
  })
  const loginLimit = { rateLimit: fastify.ipLimit('login', limits.loginPerIp) }

  fastify.post(route('/api/token/'), {
    ...validatedByHandler,
    config: loginLimit,
    schema: obtainSchema('simplejwt TokenObtainPairView: a new session', false)
  }, obtainPair)

  fastify.post(route(LEGACY_ALIAS), {
    ...validatedByHandler,
    config: loginLimit,
    schema: obtainSchema('Deprecated alias of /api/token/ (old clients); answers carry Deprecation, Link and Sunset', true),
    // Every answer, errors and throttling included, says it is deprecated and is counted apart.
    onSend: async (_request, reply: FastifyReply, payload) => {
      reply.headers(deprecationHeaders)
      return payload
    },
    onResponse: async (request, reply) => {
      legacyUses.inc({ status: reply.statusCode })
      securityEvent(request, 'legacy_endpoint_used', { route: LEGACY_ALIAS, status: reply.statusCode })
    }
  }, obtainPair)

  fastify.post(route('/api/token/refresh/'), {
    ...validatedByHandler,
    schema: { tags, summary: 'simplejwt TokenRefreshView: rotation with reuse detection (or the cut-over exchange)', body: RefreshBody,
      response: { 200: TokenPair, ...drfErrors(400, 401, 415, 429, 503) } }
  }, async (request, reply) => {
    const { refresh } = charFields(request.body, REFRESH_FIELD)
    const jkt = await fastify.dpop.tokenProof(request, { required: fastify.config.dpop.required })
    const next = await refreshTokens(request, reply, refresh!, failures, { jkt })
    return { access: next.access, refresh: next.refresh, ...(next.bound ? { token_type: 'DPoP' as const } : {}) }
  })

  fastify.post(route('/api/token/verify/'), {
    ...validatedByHandler,
    config: { rateLimit: fastify.ipLimit('verify', limits.verifyPerIp) },
    schema: { tags, summary: 'simplejwt TokenVerifyView: {} for a live access or refresh token', body: VerifyBody,
      response: { 200: Empty, ...drfErrors(400, 401, 415, 429, 503) } }
  }, async (request) => {
    const { token } = charFields(request.body, TOKEN_FIELD)
    await verifyLiveToken(fastify, token!)
    return {}
  })

  fastify.post(route('/api/token/blacklist/'), {
    ...validatedByHandler,
    schema: { tags, summary: "simplejwt TokenBlacklistView: revokes that token's session", body: RefreshBody,
      response: { 200: Empty, ...drfErrors(400, 401, 415, 503) } }
  }, async (request, reply) => {
    const { refresh } = charFields(request.body, REFRESH_FIELD)
    const { claims } = await verifyLiveToken(fastify, refresh!).catch((err: unknown) => failures.count(request, reply, err))
    if (claims.token_type !== 'refresh') throw gatewayError('token_invalid', 'not a refresh token')
    if (await fastify.sessions.revoke(claims.sub, claims.sid)) {
      securityEvent(request, 'session_revoked', { user_id: claims.sub, session_id: claims.sid, reason: 'blacklist' })
    }
    return {}
  })

  const bearer = { security: [{ bearer: [] }], tags }
  // The Bearer check (preHandler) comes before the body check, as DRF authenticates before it validates.
  fastify.post(route('/api/logout/'), {
    ...validatedByHandler,
    preHandler: failures.guarded(fastify.authenticate),
    schema: { ...bearer, summary: "Revokes the caller's session (as POST /auth/logout)", body: OptionalRefreshBody,
      response: { 200: Empty, ...drfErrors(400, 401, 415, 503) } }
  }, async (request) => {
    const { refresh } = charFields(request.body, OPTIONAL_REFRESH_FIELD)
    await logOut(request, refresh)
    return {}
  })

  fastify.post(route('/api/logout-all/'), {
    preHandler: failures.guarded(fastify.authenticate),
    schema: { ...bearer, summary: 'Revokes every session of the caller (as POST /auth/logout-all)',
      response: { 200: Empty, 401: DrfDetail, 503: DrfDetail } }
  }, async (request) => {
    await logOutAll(request)
    return {}
  })
}

export default simplejwtRoutes
