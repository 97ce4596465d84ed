/**
 * The auth client (docs/client.md) on Node 20, memory mode, against a real listening gateway: the module
 * the gateway serves (built by scripts/build-client.mjs) is the one imported here.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from '../helper.js'
import { RELAXED_LIMITS, claimsOf, waitUntilPast } from '../helpers/auth.js'
import { waitFor } from '../helpers/redis-server.js'
import { buildClient } from '../../scripts/build-client.mjs'
import type * as ClientModule from '../../client/src/index.js'

const DIST = join(import.meta.dirname, '..', '..', 'dist')
const integrity = await buildClient({ outDir: DIST })
const { createAuthClient, AuthError } = await import(pathToFileURL(join(DIST, 'client', 'auth-client.js')).href) as typeof ClientModule

/** A fetch that records what the client sends and what it gets, and can rewrite answers. */
function recordingFetch (rewrite?: (url: URL, body: any) => any) {
  const sent: Array<{ method: string, url: URL, authorization: string | null, status: number, code?: string }> = []
  const impl: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    const url = new URL(request.url)
    const response = await fetch(request)
    const entry: { method: string, url: URL, authorization: string | null, status: number, code?: string } =
      { method: request.method, url, authorization: request.headers.get('authorization'), status: response.status }
    sent.push(entry)
    const text = await response.text()
    let body: any = null
    try { body = JSON.parse(text) } catch { /* not JSON */ }
    if (body !== null && typeof body.code === 'string') entry.code = body.code
    const out = rewrite !== undefined && body !== null ? JSON.stringify(rewrite(url, body)) : text
    return new Response(response.status === 204 ? null : out, { status: response.status, headers: response.headers })
  }
  const count = (path: string) => sent.filter((s) => s.url.pathname === path).length
  return { impl, sent, count }
}

t.test('auth client on Node (memory mode)', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, ACCESS_TOKEN_TTL: '2', REFRESH_REUSE_GRACE: '10' } })

  t.test('the gateway serves the built module, immutable, with the documented integrity hash', async (t) => {
    const res = await fetch(`${h.url}/client/auth-client.js`)
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /javascript/)
    t.match(res.headers.get('cache-control'), /max-age=31536000/)
    t.match(res.headers.get('cache-control'), /immutable/)
    t.equal(res.headers.get('cross-origin-resource-policy'), 'cross-origin', 'pages of other origins may load it')
    const body = Buffer.from(await res.arrayBuffer())
    t.same(body, await readFile(join(DIST, 'client', 'auth-client.js')), 'the file of dist/client')
    t.equal(`sha384-${createHash('sha384').update(body).digest('base64')}`, integrity, 'its sha384 is the integrity value')
    const published = await fetch(`${h.url}/client/auth-client.js.sha384`)
    t.equal((await published.text()).trim(), integrity, 'published next to it')
    t.equal((await fetch(`${h.url}/demo/`)).status, 404, 'no demo page unless DEMO_PAGE=true')
  })

  t.test('needs a baseUrl outside a browser; memory mode by default', async (t) => {
    t.throws(() => createAuthClient(), TypeError)
    const rec = recordingFetch()
    const auth = createAuthClient({ baseUrl: h.url, fetch: rec.impl })
    t.teardown(() => auth.close())
    t.equal(await auth.ready, null, 'signed out at start')
    t.equal(rec.sent.length, 0, 'no refresh attempt on start in memory mode')
  })

  t.test('login, fetch with the token, onChange, wrong password', async (t) => {
    const rec = recordingFetch()
    const auth = createAuthClient({ baseUrl: h.url, fetch: rec.impl })
    t.teardown(() => auth.close())
    const changes: Array<string | null> = []
    auth.onChange((user) => changes.push(user?.username ?? null))

    await t.rejects(auth.login('alice', 'wrong'), { name: 'AuthError', status: 401, code: 'invalid_credentials' })
    t.equal(auth.user(), null)
    const before = Date.now()
    const user = await auth.login('alice', 'alice-password')
    t.same(user, { id: '1001', username: 'alice', roles: ['user'] })
    t.same(auth.user(), user)
    t.same(changes, ['alice'])
    t.ok(auth.expiresAt()! >= before + 2000, 'expiresAt: the token lifetime from when the login was sent')

    const created = await auth.fetch('/api/orders',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: 'node book', quantity: 2 }) })
    t.equal(created.status, 201)
    const list = await auth.fetch(new URL('/api/orders', h.url))
    t.equal(list.status, 200)
    t.ok(((await list.json()) as { orders: Array<{ item: string }> }).orders.some((o: { item: string }) => o.item === 'node book'))
    t.match(rec.sent.at(-1)!.authorization, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/)
    const login = rec.sent.find((s) => s.url.pathname === '/auth/login' && s.status === 200)
    t.ok(login, 'logged in through /auth/login')
  })

  t.test('the token never goes to another origin', async (t) => {
    const rec = recordingFetch()
    const auth = createAuthClient({ baseUrl: h.url, fetch: rec.impl })
    t.teardown(() => auth.close())
    await auth.login('alice', 'alice-password')
    const elsewhere = `http://127.0.0.1:${(h.orders.server.address() as { port: number }).port}/api/orders`
    const res = await auth.fetch(elsewhere)
    t.equal(res.status, 401, 'the orders service refuses a call without an assertion')
    t.equal(rec.sent.at(-1)!.authorization, null, 'no Authorization header to another origin')
  })

  t.test('concurrent calls on an expired token share one refresh and are retried once', async (t) => {
    // The client is told tokens live an hour, so it does not refresh ahead: the gateway's 401 path is tested.
    const rec = recordingFetch((url, body) => (url.pathname === '/auth/login' || url.pathname === '/auth/refresh'
      ? { ...body, expires_in: 3600 } : body))
    const auth = createAuthClient({ baseUrl: h.url, fetch: rec.impl })
    t.teardown(() => auth.close())
    await auth.login('alice', 'alice-password')
    const first = rec.sent.length
    const exp = Number(claimsOf((await (await h.request('POST', '/auth/login',
      { body: { username: 'bob', password: 'bob-password' } })).body).access).exp)
    await waitUntilPast(exp * 1000 + 1000, 'the access token expired at the gateway')

    const answers = await Promise.all(Array.from({ length: 5 }, () => auth.fetch('/api/orders')))
    t.same(answers.map((r) => r.status), [200, 200, 200, 200, 200], 'every call succeeds')
    const calls = rec.sent.slice(first)
    t.equal(calls.filter((c) => c.url.pathname === '/auth/refresh').length, 1, 'one refresh for all of them')
    t.equal(calls.filter((c) => c.code === 'token_expired').length, 5, 'each got token_expired once')
    t.equal(calls.filter((c) => c.url.pathname === '/api/orders').length, 10, 'and was retried once')
  })

  t.test('no retry of a request that failed for another reason', async (t) => {
    const rec = recordingFetch()
    const auth = createAuthClient({ baseUrl: h.url, fetch: rec.impl })
    t.teardown(() => auth.close())
    await auth.login('alice', 'alice-password')
    const forbidden = await auth.fetch('/api/users')
    t.equal(forbidden.status, 403)
    t.equal(((await forbidden.json()) as { code: string }).code, 'forbidden')
    t.equal(rec.count('/api/users'), 1, 'a 403 is sent once')

    const other = await h.login('alice')
    t.equal((await h.request('POST', '/auth/logout-all', { token: other.access })).status, 204)
    const revoked = await auth.fetch('/api/orders')
    t.equal(revoked.status, 401)
    t.not(((await revoked.json()) as { code: string }).code, 'token_expired')
    t.equal(rec.count('/api/orders'), 1, 'a 401 other than token_expired is sent once')
  })

  t.test('stays signed in across several expiries by refreshing ahead', async (t) => {
    const rec = recordingFetch()
    const auth = createAuthClient({ baseUrl: h.url, fetch: rec.impl })
    t.teardown(() => auth.close())
    const changes: Array<string | null> = []
    auth.onChange((user) => changes.push(user?.username ?? null))
    await auth.login('bob', 'bob-password')
    const statuses: number[] = []
    await waitFor(async () => {
      statuses.push((await auth.fetch('/api/orders')).status)
      return rec.count('/auth/refresh') >= 3
    }, 'three proactive refreshes', 30_000)
    t.ok(statuses.length > 0)
    t.same([...new Set(statuses)], [200], 'no call failed')
    t.same(changes, ['bob'], 'no sign-out on the way')
    t.ok(rec.sent.filter((s) => s.url.pathname === '/auth/refresh').every((s) => s.status === 200), 'every refresh succeeded')
  })

  t.test('a refused refresh ends the session and tells onChange', async (t) => {
    const rec = recordingFetch()
    const auth = createAuthClient({ baseUrl: h.url, fetch: rec.impl })
    t.teardown(() => auth.close())
    const changes: Array<string | null> = []
    auth.onChange((user) => changes.push(user?.username ?? null))
    await auth.login('alice', 'alice-password')
    // Every session of alice is revoked from elsewhere.
    const other = await h.login('alice')
    t.equal((await h.request('POST', '/auth/logout-all', { token: other.access })).status, 204)
    await waitFor(() => auth.user() === null, 'the client noticed at its next refresh')
    t.same(changes, ['alice', null])
    t.equal(rec.sent.filter((s) => s.url.pathname === '/auth/refresh').at(-1)?.code, 'token_revoked')
    const after = await auth.fetch('/api/orders')
    t.equal(after.status, 401, 'signed out: no token sent')
    t.equal(rec.sent.at(-1)!.authorization, null)
  })

  t.test('logout revokes the session at the gateway', async (t) => {
    const rec = recordingFetch()
    const auth = createAuthClient({ baseUrl: h.url, fetch: rec.impl })
    t.teardown(() => auth.close())
    await auth.login('alice', 'alice-password')
    await auth.fetch('/api/orders')
    const token = rec.sent.at(-1)!.authorization!.slice('Bearer '.length)
    await auth.logout()
    t.equal(auth.user(), null)
    t.equal(rec.sent.at(-1)!.url.pathname, '/auth/logout')
    t.equal(rec.sent.at(-1)!.status, 204)
    const verify = await h.request('POST', '/auth/verify', { body: { token } })
    t.equal(verify.status, 401)
    t.equal(verify.body.code, 'token_revoked', 'the access token is refused from now on')
  })

  t.test('AuthError is exported', async (t) => {
    t.type(new AuthError(401, 'x', 'y'), Error)
  })
})
