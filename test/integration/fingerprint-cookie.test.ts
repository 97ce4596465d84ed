/**
 * The fingerprint cookie of cookie-mode sessions (OWASP "token sidejacking"), from the outside: a
 * cookie-mode login sets an HttpOnly `__Host-` cookie whose SHA-256 the access token carries; the
 * token alone (lifted from the page, a log) is refused, with the cookie it works on the own routes
 * and the proxy; each cookie refresh sets the cookie again (the session keeps its value).
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
  t.equal(
    claimsOf(setCookieOf(login, 'refresh_token')!.value).fgp,
    sha256(fgp!.value),
    'so does the refresh token (the next refresh keeps the value)'
  )

  const withCookie = { cookie: `__Host-gw_fgp=${fgp!.value}` }
  const stolen = await h.request('GET', '/api/users/me', { token: access })
  t.equal(stolen.status, 401, 'the token without its cookie: 401')
  t.equal(stolen.body.code, 'token_invalid')
  const forged = await h.request('GET', '/api/users/me', { token: access, headers: { cookie: '__Host-gw_fgp=' + 'A'.repeat(43) } })
  t.equal(forged.status, 401, 'with another cookie value: 401')
  t.equal((await h.request('GET', '/api/users/me', { token: access, headers: withCookie })).status, 200, 'with its cookie: the proxy')
  t.equal((await h.request('GET', '/auth/sessions', { token: access, headers: withCookie })).status, 200, 'with its cookie: the own routes')

  const refreshCookie = setCookieOf(login, 'refresh_token')!.value
  const refreshed = await h.request(
    'POST',
    '/auth/refresh',
    { headers: { origin: h.url, cookie: `refresh_token=${refreshCookie}; ${withCookie.cookie}` } }
  )
  t.equal(refreshed.status, 200)
  const renewed = setCookieOf(refreshed, '__Host-gw_fgp')
  t.ok(renewed !== undefined, 'a cookie refresh sets the fingerprint cookie again')
  t.equal(renewed!.attributes['max-age'], '604800', 'its lifetime renewed')
  t.equal(renewed!.value, fgp!.value, 'the session keeps its value: tabs sharing the cookie never race')
  t.equal(claimsOf(refreshed.body.access).fgp, sha256(fgp!.value), 'the new access token names it')
  t.equal(
    (await h.request('GET', '/api/users/me', { token: access, headers: withCookie })).status,
    200,
    'a call in flight with the token before still works'
  )
  t.equal(
    (await h.request('GET', '/api/users/me', { token: refreshed.body.access, headers: withCookie })).status,
    200,
    'and with the new token'
  )

  // A refresh without the fingerprint cookie (lost, or a copied refresh cookie): a new fingerprint.
  const lost = await h.request(
    'POST',
    '/auth/refresh',
    { headers: { origin: h.url, cookie: `refresh_token=${setCookieOf(refreshed, 'refresh_token')!.value}` } }
  )
  t.equal(lost.status, 200)
  const fresh = setCookieOf(lost, '__Host-gw_fgp')
  t.not(fresh?.value, fgp!.value, 'a new fingerprint value')
  t.equal(claimsOf(lost.body.access).fgp, sha256(fresh!.value))
  t.equal(
    (await h.request('GET', '/api/users/me', { token: lost.body.access, headers: withCookie })).status,
    401,
    'the new token with the old cookie: 401'
  )

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
