/**
 * We speak OAuth 2.0, not just our reading of it: a resource server written with Python's authlib
 * (Debian's python3-authlib) validates the metadata document with authlib's RFC 8414 validators,
 * introspects a user's access and refresh token, its own client token, a delegated, an expired, a
 * forged and a DPoP-bound token (and a revoked one, after revoking it), and revokes a user's token,
 * its own token and (refused) another client's, with client authentication by HTTP Basic and by
 * body credentials. Debian's Python packages belong to /usr/bin/python3, not to the python3 first
 * on PATH.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { SignJWT } from 'jose'
import { build } from '../helper.js'
import { claimsOf, RELAXED_LIMITS } from '../helpers/auth.js'
import { ROOT } from '../helpers/processes.js'
import { clientToken, registerClient } from '../helpers/machine-clients.js'
import { exchange } from '../helpers/oauth-standard.js'
import { dpopKey } from '../helpers/dpop.js'

const run = promisify(execFile)
const PYTHON = '/usr/bin/python3'
const ISSUER = 'https://auth.example.test'

t.test('authlib against the gateway', async (t) => {
  t.ok(existsSync('/usr/lib/python3/dist-packages/authlib/__init__.py'), 'Debian python3-authlib (make test-packages installs it)')
  const h = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000', JWT_ISSUER: ISSUER } })
  const admin = await h.login('admin')
  const rs = await registerClient(h.url, admin.access, ['tokens:introspect', 'orders:read'], 'python resource server')
  const other = await registerClient(h.url, admin.access, ['orders:read'], 'another client')
  const exchanger = await registerClient(h.url, admin.access, ['token-exchange'], 'exchanger')
  const alice = await h.login('alice')
  const bob = await h.login('bob')
  const delegated = await exchange(h.url, exchanger, alice.access, 'orders')
  const otherToken = await clientToken(h.url, other)
  const now = Math.floor(Date.now() / 1000)
  const expired = await new SignJWT({ ...claimsOf(alice.access), iat: now - 120, exp: now - 60 })
    .setProtectedHeader({ alg: 'ES256', kid: h.keyRing.signing.kid, typ: 'JWT' })
    .sign(h.keyRing.signing.privateKey)
  const key = await dpopKey()
  const bound = await h.request('POST', '/auth/login', {
    body: { username: 'alice', password: 'alice-password' },
    headers: { dpop: await key.proof({ method: 'POST', url: `${h.url}/auth/login` }) }
  })
  t.equal(bound.body.token_type, 'DPoP', 'a DPoP-bound login')

  const { stdout } = await run(PYTHON, [join(ROOT, 'test/fixtures/authlib-client.py')], {
    env: {
      PATH: '/usr/bin:/bin',
      GATEWAY_URL: h.url,
      CLIENT_ID: rs.client_id,
      CLIENT_SECRET: rs.client_secret,
      WRONG_SECRET: 'x'.repeat(43),
      USER_ACCESS: alice.access,
      USER_REFRESH: alice.refresh,
      USER2_ACCESS: bob.access,
      DELEGATED: delegated,
      EXPIRED: expired,
      OTHER_CLIENT_TOKEN: otherToken,
      DPOP_BOUND: bound.body.access as string
    },
    timeout: 60_000
  })
  const out = JSON.parse(stdout)
  t.same(out.metadata_problems, {}, 'authlib\'s RFC 8414 validators accept the metadata document')
  t.same(out.own_token, { token_type: 'Bearer', scope: 'tokens:introspect orders:read' }, 'client credentials grant')
  const i = out.introspect
  t.match(i.user_access, { status: 200, body: { active: true, token_type: 'Bearer', sub: alice.user.id, username: 'alice', iss: ISSUER } })
  t.match(i.user_refresh, { status: 200, body: { active: true, token_type: 'refresh_token', sub: alice.user.id } })
  t.match(i.own_client_token, { status: 200, body: { active: true, client_id: rs.client_id, scope: 'tokens:introspect orders:read' } })
  t.match(i.delegated, { status: 200, body: { active: true, sub: alice.user.id, act: { sub: `client:${exchanger.client_id}` } } })
  t.same(i.expired, { status: 200, body: { active: false } }, 'expired: inactive')
  t.same(i.forged, { status: 200, body: { active: false } }, 'forged: inactive')
  t.match(i.dpop_bound, { status: 200, body: { active: true, token_type: 'DPoP', cnf: { jkt: key.jkt }, username: 'alice' } },
    'DPoP-bound: token_type DPoP and the key\'s thumbprint')
  t.match(i.user_access_post, { status: 200, body: { active: true } }, 'with body credentials too')
  t.same(out.introspect_sent, { basic: { basic: true, secret_in_body: false }, post: { basic: false, secret_in_body: true } },
    'authlib used HTTP Basic, then the body')
  t.same(out.wrong_secret, { status: 401, body: { error: 'invalid_client', error_description: 'client authentication failed' } },
    'a wrong secret: invalid_client')
  t.same(out.revoke_user, { status: 200, after: { active: false } }, 'a user\'s token revoked')
  t.equal((await h.request('GET', '/api/orders', { token: bob.access })).status, 401, 'and refused by the proxy')
  t.same(out.revoke_own, { status: 200, after: { active: false } }, 'its own token revoked (body credentials)')
  t.match(out.revoke_other_client, { status: 400, body: { error: 'unauthorized_client' }, after: { active: true } },
    'another client\'s token: refused, still live')
  t.equal(out.revoke_unknown, 200, 'an unknown token: 200')
})
