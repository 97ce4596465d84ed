/**
 * A Django team puts the gateway in front of its existing user table (docs/identity-backend.md): a Django
 * project whose users were made by Django itself (migrate + a management command, sqlite in a temp
 * dir), the gateway_identity adapter served by gunicorn as a process, and a gateway whose USERS_URL
 * is that Django. The users upstream is Django for everything: the identity calls and the proxied
 * /api/users routes (the adapter answers GET /api/users/me, /api/users and /api/users/{id}).
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from '../helper.js'
import { freePort } from '../helpers/redis-server.js'
import { ROOT, stop } from '../helpers/processes.js'
import { djangoMissing, manage, manageAsync, startGunicorn, waitUntilServing } from '../helpers/django.js'
import { loadIdentityBackendDocument, responseValidator, runScenarios, signAssertion } from '../helpers/identity-backend-conformance.js'
import { KeyRing } from '../../src/tokens/key-ring.js'

const PROJECT = join(ROOT, 'test/django/identity_project')
const PASSWORDS = { dana: 'dana-django-password', erin: 'erin-django-password', frank: 'frank-django-password' }

// Django, gunicorn and PBKDF2 are slow on a loaded machine: more than .taprc's 180 s for this file.
t.setTimeout(600_000)

t.test('the gateway in front of a Django user table', async (t) => {
  const missing = djangoMissing()
  t.equal(missing, null, 'Debian\'s Django, PyJWT and gunicorn are installed')
  if (missing !== null) return

  const dir = mkdtempSync(join(tmpdir(), 'identity-project-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const djangoEnv = { IDENTITY_DB: join(dir, 'db.sqlite3'), LEGACY_SIMPLEJWT_KEY: 'the-old-services-signing-key-for-tests' }
  manage(PROJECT, ['migrate', '--noinput'], djangoEnv)
  const ids = JSON.parse(manage(PROJECT, ['create_identity_users'], djangoEnv).stdout.trim()) as Record<'dana' | 'erin' | 'frank', string>

  const djangoPort = await freePort()
  const djangoUrl = `http://127.0.0.1:${djangoPort}`
  const h = await build(t, { env: { USERS_URL: djangoUrl } })
  const gunicorn = startGunicorn(PROJECT, 'identity_project.wsgi:application', djangoPort, {
    ...djangoEnv,
    GATEWAY_JWKS_URL: `${h.url}/.well-known/jwks.json`
  })
  t.teardown(() => stop(gunicorn))
  await waitUntilServing(gunicorn, `${djangoUrl}/internal/users/0`)

  t.test('the adapter answers as the identity backend document says', async (t) => {
    const validate = responseValidator(loadIdentityBackendDocument())
    const results = await runScenarios({
      baseUrl: djangoUrl,
      keyRing: h.keyRing,
      active: { id: ids.dana, username: 'dana', password: PASSWORDS.dana, roles: ['user'] },
      inactive: { id: ids.erin, username: 'erin', password: PASSWORDS.erin },
      factors: true
    })
    for (const r of results) {
      t.equal(r.status, r.expected, `${r.name}: ${r.expected}`)
      if (r.status !== 204) t.equal(
        validate(r.templatePath, r.method, r.status, r.body),
        null,
        `${r.name}: the body matches the documented schema`
      )
    }
  })

  t.test('login with the Django password', async (t) => {
    const res = await h.request('POST', '/auth/login', { body: { username: 'dana', password: PASSWORDS.dana } })
    t.equal(res.status, 200, res.text)
    t.same(res.body.user, { id: ids.dana, username: 'dana', roles: ['user'] }, 'the Django user id, as a string')
    const me = await h.request('GET', '/api/users/me', { token: res.body.access })
    t.equal(me.status, 200, 'GET /api/users/me is answered by Django through the gateway')
    t.same(me.body, { id: ids.dana, username: 'dana', roles: ['user'], active: true })
    t.equal((await h.request('GET', '/api/users', { token: res.body.access })).status, 403, 'a plain user may not list users')
  })

  t.test('wrong password, unknown user and inactive user are refused alike', async (t) => {
    const attempts = [['dana', 'not-danas-password'], ['erin', PASSWORDS.erin], ['nobody', PASSWORDS.dana]] as const
    const bodies = []
    for (const [username, password] of attempts) {
      const res = await h.request('POST', '/auth/login', { body: { username, password } })
      t.equal(res.status, 401, `${username}: 401`)
      t.equal(res.body.code, 'invalid_credentials', `${username}: invalid_credentials`)
      const { request_id: _r, ...rest } = res.body as Record<string, unknown>
      bodies.push(JSON.stringify(rest))
    }
    t.equal(new Set(bodies).size, 1, 'the same answer for each')
    t.same(await h.gateway.users.lookupUser(ids.erin, 'e2e-lookup'), { id: ids.erin, username: 'erin', roles: ['user'], active: false },
      'the lookup knows erin is inactive')
    t.equal(await h.gateway.users.lookupUser('999999', 'e2e-lookup-2'), null, 'an unknown id is null')
  })

  t.test('the admin-group user reaches /api/users', async (t) => {
    const res = await h.request('POST', '/auth/login', { body: { username: 'frank', password: PASSWORDS.frank } })
    t.equal(res.status, 200, res.text)
    t.same(res.body.user.roles, ['user', 'admin'], 'the group gateway-admins is the role admin')
    const list = await h.request('GET', '/api/users', { token: res.body.access })
    t.equal(list.status, 200, list.text)
    t.same(list.body.users.map((u: { username: string }) => u.username), ['dana', 'erin', 'frank'])
    const erin = await h.request('GET', `/api/users/${ids.erin}`, { token: res.body.access })
    t.same(erin.body, { id: ids.erin, username: 'erin', roles: ['user'], active: false })
  })

  t.test('going around the gateway gets nothing', async (t) => {
    const creds = JSON.stringify({ username: 'dana', password: PASSWORDS.dana })
    const post = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${djangoUrl}/internal/credentials/check`,
        { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: creds })
    const bare = await post({})
    t.equal(bare.status, 401, 'no assertion: 401')
    t.notMatch(await bare.text(), /dana/)
    const forged = await post({ 'x-gateway-assertion': await signAssertion(await KeyRing.ephemeral(), { scope: 'credentials:check' }) })
    t.equal(forged.status, 401, 'an assertion from other keys: 401')
    t.equal(((await forged.json()) as { code: string }).code, 'gateway_assertion_required')
    const list = await fetch(`${djangoUrl}/api/users`,
      { headers: { 'x-gateway-assertion': await signAssertion(h.keyRing, { scope: 'users:read' }) } })
    t.equal(list.status, 403, 'an identity call\'s assertion does not list users')
  })

  t.test('a password changed in Django holds at the next login', async (t) => {
    // Asynchronously: a blocked event loop would stall the in-process gateway.
    const changed = await manageAsync(PROJECT, ['shell', '-c',
      'from django.contrib.auth import get_user_model as g; u = g().objects.get(username="dana"); u.set_password("dana-new-password"); ' +
        'u.save()'], djangoEnv)
    t.equal(changed.code, 0, changed.output)
    t.equal((await h.request('POST', '/auth/login', { body: { username: 'dana', password: PASSWORDS.dana } })).status, 401,
      'the old password is refused')
    t.equal((await h.request('POST', '/auth/login', { body: { username: 'dana', password: 'dana-new-password' } })).status, 200,
      'the new one works')
  })

  t.test('a Django that expects another issuer: 502, never a failed login, never locked', async (t) => {
    const strictPort = await freePort()
    const strict = startGunicorn(PROJECT, 'identity_project.wsgi:application', strictPort, {
      ...djangoEnv,
      GATEWAY_JWKS_URL: `${h.url}/.well-known/jwks.json`,
      GATEWAY_ISSUER: 'some-other-gateway'
    })
    t.teardown(() => stop(strict))
    await waitUntilServing(strict, `http://127.0.0.1:${strictPort}/internal/users/0`)
    // A second replica of the same gateway (same Redis, same keys) whose USERS_URL is that Django.
    const replica = await build(t, { env: { USERS_URL: `http://127.0.0.1:${strictPort}` }, redis: h.redis, keyRing: h.keyRing })
    const statuses: number[] = []
    for (let i = 0; i < 7; i++) {
      const res = await replica.request('POST', '/auth/login',
        { body: { username: 'frank', password: i % 2 === 0 ? PASSWORDS.frank : 'wrong' } })
      statuses.push(res.status)
      t.equal(res.body.code, 'upstream_unavailable')
    }
    t.same(statuses, [502, 502, 502, 502, 502, 502, 502], 'the right and wrong passwords alike: 502')
    t.equal((await h.request('POST', '/auth/login', { body: { username: 'frank', password: PASSWORDS.frank } })).status, 200,
      'frank was never locked')
  })

  // ---------------------------------------------------------------------------------------------
  // The simplejwt cut-over (docs/simplejwt-api.md) against the same Django project: it is also "the old
  // service", issuing simplejwt HS256 tokens signed with LEGACY_SIMPLEJWT_KEY at /api/token/. A
  // gateway with that key and a cut-over date exchanges frank's refresh token once for a new
  // session of the user the adapter knows; a gateway without the key refuses it.
  t.test('a simplejwt refresh token of the old Django service is exchanged once in the cut-over window', async (t) => {
    const old = await fetch(`${djangoUrl}/api/token/`,
      { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'frank', password: PASSWORDS.frank }) })
    t.equal(old.status, 200, 'the old service still issues simplejwt tokens')
    const { refresh } = await old.json() as { refresh: string }
    const claims = JSON.parse(Buffer.from(refresh.split('.')[1]!, 'base64url').toString('utf8')) as { user_id: unknown, token_type: string }
    t.equal(String(claims.user_id), ids.frank, 'its user_id is the id the adapter reports')
    t.equal(claims.token_type, 'refresh')

    const refused = await h.request('POST', '/auth/refresh', { body: { refresh } })
    t.equal(refused.status, 401, 'without LEGACY_SIMPLEJWT_KEY the gateway refuses it')

    const until = new Date(Date.now() + 7 * 86400_000).toISOString().slice(0, 10)
    const cutover = await build(t, {
      env: { USERS_URL: djangoUrl, LEGACY_SIMPLEJWT_KEY: djangoEnv.LEGACY_SIMPLEJWT_KEY, LEGACY_SIMPLEJWT_UNTIL: until },
      redis: h.redis,
      keyRing: h.keyRing
    })
    const exchanged = await cutover.request('POST', '/api/token/refresh/', { body: { refresh } })
    t.equal(exchanged.status, 200, 'exchanged for a gateway session')
    t.match(exchanged.body, { access: String, refresh: String })
    const access = JSON.parse(Buffer.from(String(exchanged.body.access).split('.')[1]!, 'base64url').toString('utf8')) as { sub: string,
      user_id: string, username: string }
    t.equal(access.sub, ids.frank, 'a session of the same user')
    t.equal(access.user_id, ids.frank)
    t.equal(access.username, 'frank')
    const me = await cutover.request('GET', '/api/users/me', { token: String(exchanged.body.access) })
    t.equal(me.status, 200, 'the new access token works through the gateway')

    const again = await cutover.request('POST', '/api/token/refresh/', { body: { refresh } })
    t.equal(again.status, 401, 'a second exchange of the same token is refused')
    t.equal(again.body.code, 'token_not_valid')
  })
})
