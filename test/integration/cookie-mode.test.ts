/** Cookie mode: the refresh token in an HttpOnly cookie, and the Origin check of a cookie refresh (docs/tokens-and-sessions.md). */
import t, { type Test } from 'tap'
import { build, type Harness, type HttpResult } from '../helper.js'
import { RELAXED_LIMITS, claimsOf, setCookieOf, waitUntilPast, type ParsedCookie } from '../helpers/auth.js'

const JWS = /^[\w-]+\.[\w-]+\.[\w-]+$/
const APP_ORIGIN = 'https://app.example'

/** The fingerprint cookie (docs/dpop.md): cookie-mode access tokens are accepted only with it. */
const FGP = '__Host-gw_fgp'

async function cookieLogin (
  t: Test,
  h: Harness,
  username = 'alice'
): Promise<{ access: string, cookie: ParsedCookie, fgp: ParsedCookie, res: HttpResult }> {
  const res = await h.request('POST', '/auth/login', { body: { username, password: `${username}-password`, cookie: true } })
  t.equal(res.status, 200, 'cookie login: 200')
  const cookie = setCookieOf(res, 'refresh_token')
  const fgp = setCookieOf(res, FGP) ?? setCookieOf(res, 'gw_fgp')
  if (cookie === undefined || fgp === undefined) throw new Error('no refresh_token or fingerprint cookie was set')
  return { access: res.body.access, cookie, fgp, res }
}

function cookieRefresh (h: Harness, token: string, origin?: string): Promise<HttpResult> {
  const headers: Record<string, string> = { cookie: `refresh_token=${token}` }
  if (origin !== undefined) headers.origin = origin
  return h.request('POST', '/auth/refresh', { headers })
}

function assertCsrfRejected (t: Test, res: HttpResult, what: string): void {
  t.equal(res.status, 403, `${what}: 403`)
  t.equal(res.body?.code, 'csrf_rejected', `${what}: csrf_rejected`)
  t.match(res.headers.get('content-type'), /^application\/problem\+json/, `${what}: problem+json`)
  t.equal(setCookieOf(res, 'refresh_token'), undefined, `${what}: no new cookie`)
}

t.test('cookie mode with secure cookies and CORS_ORIGINS', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, CORS_ORIGINS: APP_ORIGIN } })

  t.test('login with cookie: true sets the refresh cookie and leaves it out of the body', async (t) => {
    const { res, cookie, access } = await cookieLogin(t, h)
    t.notOk('refresh' in res.body, 'no refresh token in the body')
    t.match(access, JWS)
    t.equal(res.body.token_type, 'Bearer')
    t.equal(res.body.refresh_expires_in, 604800)
    t.same(res.body.user, { id: '1001', username: 'alice', roles: ['user'] })

    t.match(cookie.value, JWS)
    t.equal(claimsOf(cookie.value).token_type, 'refresh')
    t.equal(claimsOf(cookie.value).sid, claimsOf(access).sid, 'the refresh token of the same session')
    t.ok('httponly' in cookie.attributes, 'HttpOnly')
    t.ok('secure' in cookie.attributes, 'Secure')
    t.equal(cookie.attributes.samesite?.toLowerCase(), 'strict', 'SameSite=Strict')
    t.equal(cookie.attributes.path, '/auth', 'Path=/auth')
    t.equal(cookie.attributes['max-age'], '604800', 'Max-Age is the refresh TTL')
    t.notOk('domain' in cookie.attributes, 'host-only')
  })

  t.test('login without cookie sets no cookie', async (t) => {
    const res = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
    t.equal(res.status, 200)
    t.match(res.body.refresh, JWS)
    t.equal(setCookieOf(res, 'refresh_token'), undefined)
  })

  t.test('cookie refresh from the gateway\'s own origin', async (t) => {
    const { cookie } = await cookieLogin(t, h)
    const res = await cookieRefresh(h, cookie.value, h.url)
    t.equal(res.status, 200)
    t.notOk('refresh' in res.body, 'no refresh token in the body')
    t.match(res.body.access, JWS)
    t.equal(res.body.token_type, 'Bearer')
    const next = setCookieOf(res, 'refresh_token')
    t.ok(next !== undefined, 'a new cookie is set')
    t.match(next?.value, JWS)
    t.not(next?.value, cookie.value, 'a rotated token')
    t.equal(claimsOf(next!.value).sid, claimsOf(cookie.value).sid, 'same session')
    t.ok('httponly' in (next?.attributes ?? {}), 'HttpOnly')
    t.ok('secure' in (next?.attributes ?? {}), 'Secure')
    t.equal(next?.attributes.samesite?.toLowerCase(), 'strict')
    t.equal(next?.attributes.path, '/auth')
    t.equal(next?.attributes['max-age'], '604800')

    const again = await cookieRefresh(h, next!.value, h.url)
    t.equal(again.status, 200, 'the new cookie refreshes in turn')
  })

  t.test('cookie refresh from an origin of CORS_ORIGINS', async (t) => {
    const { cookie } = await cookieLogin(t, h)
    const res = await cookieRefresh(h, cookie.value, APP_ORIGIN)
    t.equal(res.status, 200)
    t.notOk('refresh' in res.body)
    t.ok(setCookieOf(res, 'refresh_token') !== undefined, 'a new cookie is set')
    t.equal(res.headers.get('access-control-allow-origin'), APP_ORIGIN)
    t.equal(res.headers.get('access-control-allow-credentials'), 'true')
  })

  t.test('cookie refresh without an Origin: 403 csrf_rejected', async (t) => {
    const { cookie } = await cookieLogin(t, h)
    assertCsrfRejected(t, await cookieRefresh(h, cookie.value), 'no Origin')
    // The refused call did not consume the token.
    t.equal((await cookieRefresh(h, cookie.value, h.url)).status, 200, 'the cookie still refreshes from a trusted origin')
  })

  t.test('cookie refresh from a foreign origin: 403 csrf_rejected', async (t) => {
    const { cookie } = await cookieLogin(t, h)
    for (const origin of ['https://evil.example', 'null', 'http://app.example', `${APP_ORIGIN}.evil.example`, h.url.replace('127.0.0.1', 'localhost')]) {
      assertCsrfRejected(t, await cookieRefresh(h, cookie.value, origin), origin)
    }
    t.equal((await cookieRefresh(h, cookie.value, h.url)).status, 200, 'the token was not consumed')
  })

  t.test('a token in the body takes precedence over the cookie and needs no Origin', async (t) => {
    const { cookie } = await cookieLogin(t, h)
    const other = await h.login('alice')
    const res = await h.request('POST', '/auth/refresh', {
      body: { refresh: other.refresh },
      headers: { cookie: `refresh_token=${cookie.value}` }
    })
    t.equal(res.status, 200)
    t.match(res.body.refresh, JWS, 'body mode: the refresh token is in the body')
    t.equal(claimsOf(res.body.refresh).sid, claimsOf(other.refresh).sid, 'the body token was the one rotated')
    t.equal(setCookieOf(res, 'refresh_token'), undefined, 'no cookie in body mode')
    t.equal((await cookieRefresh(h, cookie.value, h.url)).status, 200, 'the cookie token was not used')

    const withGarbageCookie = await h.request('POST', '/auth/refresh', {
      body: { refresh: res.body.refresh },
      headers: { cookie: 'refresh_token=garbage', origin: 'https://evil.example' }
    })
    t.equal(withGarbageCookie.status, 200, 'a foreign Origin does not matter in body mode')
  })

  t.test('no cookie and no body: 401 token_missing', async (t) => {
    const res = await h.request('POST', '/auth/refresh', { headers: { origin: h.url } })
    t.equal(res.status, 401)
    t.equal(res.body.code, 'token_missing')
  })

  t.test('reuse of a cookie token after rotation clears the cookie and revokes the session', async (t) => {
    const h0 = await build(t, { env: { ...RELAXED_LIMITS, REFRESH_REUSE_GRACE: '0' } })
    const { cookie, access, fgp } = await cookieLogin(t, h0)
    const first = await cookieRefresh(h0, cookie.value, h0.url)
    t.equal(first.status, 200)
    const rotatedAt = Date.now()
    await waitUntilPast(rotatedAt + 1, 'the clock to move on')
    const reuse = await cookieRefresh(h0, cookie.value, h0.url)
    t.equal(reuse.status, 401)
    t.equal(reuse.body.code, 'token_reused')
    const cleared = setCookieOf(reuse, 'refresh_token')
    t.equal(cleared?.value, '', 'the cookie is cleared')
    t.equal(
      (await h0.request('GET', '/auth/sessions', { token: access, headers: { cookie: `${FGP}=${fgp.value}` } })).body.code,
      'token_revoked'
    )
  })

  t.test('logout with the cookie clears it', async (t) => {
    const { cookie, access, fgp } = await cookieLogin(t, h)
    const res = await h.request(
      'POST',
      '/auth/logout',
      { token: access, headers: { cookie: `refresh_token=${cookie.value}; ${FGP}=${fgp.value}` } }
    )
    t.equal(res.status, 204)
    const cleared = setCookieOf(res, 'refresh_token')
    t.equal(cleared?.value, '', 'the cookie is cleared')
    t.equal(cleared?.attributes.path, '/auth')
    t.equal(setCookieOf(res, FGP)?.value, '', 'and the fingerprint cookie')
    const after = await cookieRefresh(h, cookie.value, h.url)
    t.equal(after.status, 401)
    t.equal(after.body.code, 'token_revoked')
  })
})

t.test('COOKIE_SECURE=false drops the Secure attribute', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, COOKIE_SECURE: 'false' } })
  const { cookie } = await cookieLogin(t, h)
  t.notOk('secure' in cookie.attributes, 'no Secure')
  t.ok('httponly' in cookie.attributes, 'still HttpOnly')
  t.equal(cookie.attributes.samesite?.toLowerCase(), 'strict', 'still SameSite=Strict')
  t.equal(cookie.attributes.path, '/auth')
  t.equal(cookie.attributes['max-age'], '604800')

  const res = await cookieRefresh(h, cookie.value, h.url)
  t.equal(res.status, 200)
  const next = setCookieOf(res, 'refresh_token')
  t.ok(next !== undefined, 'a new cookie')
  t.notOk('secure' in (next?.attributes ?? {}), 'the rotated cookie has no Secure either')

  // Without CORS_ORIGINS only the gateway's own origin is trusted.
  const foreign = await cookieRefresh(h, next!.value, APP_ORIGIN)
  t.equal(foreign.status, 403)
  t.equal(foreign.body.code, 'csrf_rejected')
})

t.test('REFRESH_TOKEN_TTL sets the cookie Max-Age', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, REFRESH_TOKEN_TTL: '3600' } })
  const { cookie } = await cookieLogin(t, h)
  t.equal(cookie.attributes['max-age'], '3600')
})
