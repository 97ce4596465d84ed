/**
 * Cookie mode: the refresh token lives in an HttpOnly, SameSite=Strict cookie scoped to /auth,
 * and a cookie-based call must come from the gateway's own origin or one of CORS_ORIGINS.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { gatewayError } from '../errors.js'

export const REFRESH_COOKIE = 'refresh_token'

export function setRefreshCookie (reply: FastifyReply, token: string, maxAge: number, secure: boolean): void {
  reply.setCookie(REFRESH_COOKIE, token, { httpOnly: true, secure, sameSite: 'strict', path: '/auth', maxAge })
}

export function clearRefreshCookie (reply: FastifyReply, secure: boolean): void {
  reply.clearCookie(REFRESH_COOKIE, { httpOnly: true, secure, sameSite: 'strict', path: '/auth' })
}

/** Refuses a cookie-authenticated call whose Origin is missing or foreign (403 csrf_rejected). */
export function assertTrustedOrigin (request: FastifyRequest, allowed: readonly string[]): void {
  const origin = request.headers.origin
  const own = `${request.protocol}://${request.host}`
  if (typeof origin !== 'string' || (origin !== own && !allowed.includes(origin))) {
    throw gatewayError('csrf_rejected', 'a cookie-based call needs an Origin of the gateway or of CORS_ORIGINS')
  }
}
