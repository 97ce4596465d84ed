/**
 * We speak OAuth 2.0, not just our reading of it: a client written with a standard library
 * (Debian's python3-requests-oauthlib: BackendApplicationClient + OAuth2Session.fetch_token) gets
 * tokens by HTTP Basic and by body credentials, calls the orders service through the gateway, and
 * gets the library's own exceptions for the gateway's errors. Debian's Python packages belong to
 * /usr/bin/python3, not to the python3 first on PATH.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { build } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { ROOT } from '../helpers/processes.js'
import { registerClient } from '../helpers/machine-clients.js'

const run = promisify(execFile)
const PYTHON = '/usr/bin/python3'

t.test('requests-oauthlib against the gateway', async (t) => {
  t.ok(existsSync(PYTHON), 'Debian python3 (make test-packages installs python3-requests-oauthlib)')
  const h = await build(t, { env: RELAXED_LIMITS })
  const admin = await h.login('admin')
  const client = await registerClient(h.url, admin.access, ['orders:read', 'orders:write'], 'python job')

  const { stdout } = await run(PYTHON, [join(ROOT, 'test/fixtures/oauthlib-client.py')], {
    env: { PATH: '/usr/bin:/bin', GATEWAY_URL: h.url, CLIENT_ID: client.client_id, CLIENT_SECRET: client.client_secret,
      WRONG_SECRET: 'x'.repeat(43) },
    timeout: 60_000
  })
  const out = JSON.parse(stdout)
  t.same(out.basic, { token_type: 'Bearer', scope: ['orders:read'], expires_in: h.config.jwt.accessTtl, has_refresh: false },
    'Basic: a narrowed Bearer token, no refresh token')
  t.same(out.basic_sent, { basic: true, secret_in_body: false }, 'the library used HTTP Basic')
  t.same(out.body_sent, { basic: false, secret_in_body: true }, 'then the body credentials')
  t.equal(out.basic_list, 200, 'orders:read lists')
  t.equal(out.basic_create, 403, 'orders:read does not create')
  t.same(out.body.scope, ['orders:read', 'orders:write'], 'body credentials: every scope of the client')
  t.equal(out.body_create, 201)
  t.equal(out.body_order.client_id, client.client_id)
  t.same(out.body_list, [out.body_order.id], 'the client sees its own order')
  t.same(out.wrong_secret, { class: 'InvalidClientError', error: 'invalid_client', status: 401 },
    'a wrong secret is the library\'s InvalidClientError')
  t.same(out.bad_scope, { class: 'InvalidScopeError', error: 'invalid_scope', status: 400 },
    'a foreign scope is the library\'s InvalidScopeError')
})
