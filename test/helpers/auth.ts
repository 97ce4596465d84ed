/**
 * Small helpers shared by the auth, session and header tests: generous rate limits (these tests
 * are about tokens and sessions, not about abuse protection), Set-Cookie parsing, and waiting
 * until a wall-clock deadline has passed by polling (never a fixed sleep).
 */
import type { Test } from 'tap'
import { decodeJwt } from 'jose'
import type { Harness, HttpResult } from '../helper.js'
import { waitFor } from './redis-server.js'

/** Limits high enough that no test here is ever rate limited (the limits of docs/abuse-protection.md have their own tests). */
export const RELAXED_LIMITS: Record<string, string> = {
  LOGIN_IP_LIMIT: '10000',
  REFRESH_SESSION_LIMIT: '10000',
  VERIFY_IP_LIMIT: '10000',
  API_USER_LIMIT: '10000',
  PUBLIC_IP_LIMIT: '10000'
}

export interface ParsedCookie {
  name: string
  value: string
  /** Attribute names in lower case; flag attributes (HttpOnly, Secure) have the value ''. */
  attributes: Record<string, string>
}

export function parseSetCookie (line: string): ParsedCookie {
  const [pair = '', ...attrs] = line.split(';').map((s) => s.trim())
  const eq = pair.indexOf('=')
  const attributes: Record<string, string> = {}
  for (const a of attrs) {
    const i = a.indexOf('=')
    if (i === -1) attributes[a.toLowerCase()] = ''
    else attributes[a.slice(0, i).toLowerCase()] = a.slice(i + 1)
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes }
}

/** The Set-Cookie of the named cookie in a response, parsed, or undefined. */
export function setCookieOf (res: HttpResult, name: string): ParsedCookie | undefined {
  return res.headers.getSetCookie().map(parseSetCookie).find((c) => c.name === name)
}

/** The claims of a JWT, read without verification (the tests only look at them). */
export function claimsOf (token: string): Record<string, unknown> {
  return decodeJwt(token) as Record<string, unknown>
}

/** Resolves once Date.now() is past `deadlineMs`, by polling. */
export async function waitUntilPast (deadlineMs: number, what: string): Promise<void> {
  await waitFor(() => Date.now() > deadlineMs, what, deadlineMs - Date.now() + 5_000)
}

/** POST /auth/refresh with the token in the body. */
export function refresh (h: Harness, token: string): Promise<HttpResult> {
  return h.request('POST', '/auth/refresh', { body: { refresh: token } })
}

/** The token was refused with this code, as problem+json with an invalid_token challenge. */
export function assertTokenRefused (t: Test, res: HttpResult, code: string, what: string): void {
  t.equal(res.status, 401, `${what}: status`)
  t.equal(res.body?.code, code, `${what}: code`)
  t.match(res.headers.get('content-type'), /^application\/problem\+json/, `${what}: problem+json`)
  t.match(res.headers.get('www-authenticate'), /^Bearer\b.*error="invalid_token"/, `${what}: invalid_token challenge`)
}
