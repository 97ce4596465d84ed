/**
 * Crafted tokens (docs/tokens-and-sessions.md and docs/errors.md): each one is refused with 401 and a token code, never a 500,
 * by every token consumer: the Bearer check (GET /auth/sessions), POST /auth/verify and, for
 * refresh tokens, POST /auth/refresh. The cases are in test/helpers/attack-tokens.ts.
 */
import t, { type Test } from 'tap'
import { build, type HttpResult } from '../helper.js'
import { craftAttacks } from '../helpers/attack-tokens.js'
import { decodePart, signEs256 } from '../helpers/jwt-craft.js'

const HIGH_LIMITS = {
  LOGIN_IP_LIMIT: '100000',
  VERIFY_IP_LIMIT: '100000',
  PUBLIC_IP_LIMIT: '100000',
  API_USER_LIMIT: '100000',
  REFRESH_SESSION_LIMIT: '100000'
}

t.test('crafted tokens', async (t) => {
  const h = await build(t, { env: HIGH_LIMITS })
  const { access, refresh } = await h.login('alice')
  const realHeader = decodePart(access.split('.')[0]!)
  const kid = h.keyRing.signing.kid
  const key = h.keyRing.signing.privateKey
  t.equal(realHeader.kid, kid, 'the gateway signs with the ring\'s signing key')
  const attacks = await craftAttacks({ access, refresh, keyRing: h.keyRing, issuer: h.config.jwt.issuer, audience: h.config.jwt.audience })
  const { claims, header } = attacks

  t.test('control: a hand-made token with the real key and valid claims is accepted', async (t) => {
    const token = signEs256(key, header(), claims())
    const res = await h.request('GET', '/auth/sessions', { token })
    t.equal(res.status, 200, res.text)
    const v = await h.request('POST', '/auth/verify', { body: { token } })
    t.equal(v.status, 200, v.text)
    t.equal(v.body.token_type, 'access')
  })

  const expectRefused = (t: Test, res: HttpResult, code: string, what: string): void => {
    t.equal(res.status, 401, `${what}: 401 (${res.text})`)
    t.equal(res.body?.code, code, `${what}: code`)
    t.match(res.headers.get('content-type'), /^application\/problem\+json/, `${what}: problem+json`)
    t.match(res.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/, `${what}: WWW-Authenticate`)
    t.notMatch(res.text, /\n\s+at /, `${what}: no stack trace`)
  }

  for (const c of attacks.access) {
    t.test(c.name, async (t) => {
      const code = c.code ?? 'token_invalid'
      expectRefused(t, await h.request('GET', '/auth/sessions', { token: c.token }), code, 'Bearer')
      if (c.verify !== false) {
        const v = await h.request('POST', '/auth/verify', { body: { token: c.token } })
        t.not(v.status, 500, 'verify is never a 500')
        if (c.name === 'too long') {
          // Longer than the body schema allows: a 400 is as good as a 401 here.
          t.ok([400, 401].includes(v.status), `verify: ${v.status}`)
        } else {
          expectRefused(t, v, code, 'verify')
        }
      }
    })
  }

  t.test('an access token posted to /auth/refresh', async (t) => {
    const res = await h.request('POST', '/auth/refresh', { body: { refresh: access } })
    expectRefused(t, res, 'token_invalid', 'refresh')
  })

  t.test('crafted tokens posted to /auth/refresh', async (t) => {
    for (const { name, token, code } of attacks.refresh) {
      expectRefused(t, await h.request('POST', '/auth/refresh', { body: { refresh: token } }), code ?? 'token_invalid', name)
    }
    // None of the above spent the real refresh token.
    const ok = await h.request('POST', '/auth/refresh', { body: { refresh } })
    t.equal(ok.status, 200, 'the real refresh token still works')
  })

  t.test('odd Authorization headers', async (t) => {
    const forms = ['Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=', 'Bearer', 'Bearer ', 'Bearer  a b', `Bearer ${access} extra`,
      `Bearer ${access},Bearer ${access}`, `Token ${access}`, 'Bearer\t' + access, '', 'Bearer ....', 'Bearer é', `${access}`]
    for (const authorization of forms) {
      const res = await h.request('GET', '/auth/sessions', { headers: { authorization } })
      const what = JSON.stringify(authorization.replace(access, '<access>').replace(access, '<access>'))
      t.equal(res.status, 401, `${what}: 401 (${res.text})`)
      t.ok(['token_missing', 'token_invalid'].includes(res.body?.code), `${what}: code ${res.body?.code}`)
      t.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, `${what}: WWW-Authenticate`)
    }
  })
})
