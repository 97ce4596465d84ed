/**
 * The browser fingerprint of cookie-mode sessions (OWASP JWT cheat sheet, "token sidejacking"): a
 * cookie-mode login or refresh sets a random value in an HttpOnly cookie that scripts cannot read
 * and puts its SHA-256 in the access token's `fgp` claim. A token with `fgp` is accepted only with
 * the cookie, so an access token lifted from the page (XSS, a log) is useless without it.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** `__Host-` pins the cookie to this host, https and Path=/ (browsers refuse it over http). */
export function fingerprintCookieName (secure: boolean): string {
  return secure ? '__Host-gw_fgp' : 'gw_fgp'
}

export function fingerprintHash (value: string): string {
  return createHash('sha256').update(value).digest('base64url')
}

export interface Fingerprint { value: string, hash: string }

/** A new fingerprint: the cookie's value and the hash to put in the access token. */
export function newFingerprint (): Fingerprint {
  const value = randomBytes(32).toString('base64url')
  return { value, hash: fingerprintHash(value) }
}

/**
 * The fingerprint of a cookie refresh: the session's own when the request carries the cookie the
 * refresh token names (the cookie is set again, its lifetime renewed), else a new one. One value per
 * session: the tabs of an origin share one cookie jar, and a value changed by one tab's refresh
 * would refuse the calls the other tabs have in flight with the token before.
 */
export function refreshFingerprint (request: FastifyRequest, secure: boolean, expected: string | undefined): Fingerprint {
  const value = request.cookies[fingerprintCookieName(secure)]
  if (expected !== undefined && typeof value === 'string' && value.length <= 128
    && fingerprintHash(value) === expected) return { value, hash: expected }
  return newFingerprint()
}

/** Sets the cookie, once the tokens naming its hash are issued (a failed call keeps the old one). */
export function setFingerprintCookie (reply: FastifyReply, fingerprint: Fingerprint, secure: boolean, maxAge: number): void {
  reply.setCookie(fingerprintCookieName(secure), fingerprint.value, { httpOnly: true, secure, sameSite: 'strict', path: '/', maxAge })
}

export function clearFingerprint (reply: FastifyReply, secure: boolean): void {
  reply.clearCookie(fingerprintCookieName(secure), { httpOnly: true, secure, sameSite: 'strict', path: '/' })
}

/** True when the request carries the cookie whose hash the token names. */
export function fingerprintMatches (request: FastifyRequest, secure: boolean, expected: string): boolean {
  const value = request.cookies[fingerprintCookieName(secure)]
  return typeof value === 'string' && value.length <= 128 && fingerprintHash(value) === expected
}
