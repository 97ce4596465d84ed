/**
 * The fingerprint cookie of cookie-mode sessions (OWASP "token sidejacking"), from the outside: a
 * cookie-mode login sets an HttpOnly `__Host-` cookie whose SHA-256 the access token carries; the
 * token alone (lifted from the page, a log) is refused, with the cookie it works on the own routes
 * and the proxy; each cookie refresh renews the fingerprint.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { build } from '../helper.js'
import { RELAXED_LIMITS, claimsOf, setCookieOf } from '../helpers/auth.js'

const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url')

t.test('fingerprint cookie with secure cookies', async (t) => {
  const h = await build(t, { env: RELAXED_LIMITS })
  const login = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password', cookie: true } })
  t.equal(login.status, 200)
  const fgp = setCookieOf(login, '__Host-gw_fgp')
  t.ok(fgp !== undefined, 'the fingerprint cookie is set')
  t.ok('httponly' in fgp!.attributes, 'HttpOnly')
  t.ok('secure' in fgp!.attributes, 'Secure')
  t.equal(fgp!.attributes.samesite?.toLowerCase(), 'strict', 'SameSite=Strict')
  t.equal(fgp!.attributes.path, '/', 'Path=/')
  t.notOk('domain' in fgp!.attributes, 'host-only')
  t.match(fgp!.value, /^[\w-]{43}$/, '256 random bits')
  const access = login.body.access as string
  t.equal(claimsOf(access).fgp, sha256(fgp!.value), 'the access token carries the cookie\'s SHA-256')
  t.notOk('fgp' in claimsOf(setCookieOf(login, 'refresh_token')!.value), 'the refresh token does not (it lives in a cookie already)')

  const withCookie = { cookie: `__Host-gw_fgp=${fgp!.value}` }
  const stolen = await h.request('GET', '/api/users/me', { token: access })
  t.equal(stolen.status, 401, 'the token without its cookie: 401')
  t.equal(stolen.body.code, 'token_invalid')
  const forged = await h.request('GET', '/api/users/me', { token: access, headers: { cookie: '__Host-gw_fgp=' + 'A'.repeat(43) } })
  t.equal(forged.status, 401, 'with another cookie value: 401')
  t.equal((await h.request('GET', '/api/users/me', { token: access, headers: withCookie })).status, 200, 'with its cookie: the proxy')
  t.equal((await h.request('GET', '/auth/sessions', { token: access, headers: withCookie })).status, 200, 'with its cookie: the own routes')

  const refreshed = await h.request('POST', '/auth/refresh', { headers: { origin: h.url, cookie: `refresh_token=${setCookieOf(login, 'refresh_token')!.value}; ${withCookie.cookie}` } })
  t.equal(refreshed.status, 200)
  const renewed = setCookieOf(refreshed, '__Host-gw_fgp')
  t.ok(renewed !== undefined, 'a cookie refresh renews the fingerprint')
  t.not(renewed!.value, fgp!.value, 'a new value')
  t.equal(claimsOf(refreshed.body.access).fgp, sha256(renewed!.value), 'the new access token names the new fingerprint')
  t.equal((await h.request('GET', '/api/users/me', { token: refreshed.body.access, headers: withCookie })).status, 401, 'the new token with the old cookie: 401')
  t.equal((await h.request('GET', '/api/users/me', { token: refreshed.body.access, headers: { cookie: `__Host-gw_fgp=${renewed!.value}` } })).status, 200, 'with the new cookie: 200')

  const failed = await h.request('POST', '/auth/refresh', { headers: { origin: h.url, cookie: 'refresh_token=garbage' } })
  t.equal(failed.status, 401)
  t.equal(setCookieOf(failed, '__Host-gw_fgp'), undefined, 'a failed refresh leaves the fingerprint alone')

  const bodyMode = await h.login('alice')
  t.notOk('fgp' in claimsOf(bodyMode.access), 'body-mode tokens have no fingerprint')
  t.equal((await h.request('GET', '/api/users/me', { token: bodyMode.access })).status, 200)
})

t.test('COOKIE_SECURE=false: the cookie is gw_fgp', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, COOKIE_SECURE: 'false' } })
  const login = await h.request('POST', '/auth/login', { body: { username: 'bob', password: 'bob-password', cookie: true } })
  const fgp = setCookieOf(login, 'gw_fgp')
  t.ok(fgp !== undefined, 'gw_fgp is set')
  t.notOk('secure' in fgp!.attributes, 'without Secure')
  t.equal((await h.request('GET', '/api/users/me', { token: login.body.access, headers: { cookie: `gw_fgp=${fgp!.value}` } })).status, 200)
  t.equal((await h.request('GET', '/api/users/me', { token: login.body.access })).status, 401)
})
