/**
 * The auth client with `dpop: true` on Node (memory mode, Node's WebCrypto), against listening
 * gateways with DPOP_NONCE on: login, calls and refresh are bound to the client's key and follow
 * the gateway's nonces; the token copied out of the client is useless as Bearer.
 */
import t from 'tap'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from '../helper.js'
import { RELAXED_LIMITS, claimsOf, waitUntilPast } from '../helpers/auth.js'
import { buildClient } from '../../scripts/build-client.mjs'
import type * as ClientModule from '../../client/src/index.js'

const DIST = join(import.meta.dirname, '..', '..', 'dist')
await buildClient({ outDir: DIST })
const { createAuthClient } = await import(pathToFileURL(join(DIST, 'client', 'auth-client.js')).href) as typeof ClientModule

t.test('dpop: true in memory mode', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, DPOP_NONCE: 'true', ACCESS_TOKEN_TTL: '3' } })
  const sent: Array<{ path: string, authorization: string | null, dpop: string | null, status: number }> = []
  let lastAccess: string | null = null
  const recording: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    const response = await fetch(request)
    sent.push({
      path: new URL(request.url).pathname,
      authorization: request.headers.get('authorization'),
      dpop: request.headers.get('dpop'),
      status: response.status
    })
    const auth = request.headers.get('authorization')
    if (auth?.startsWith('DPoP ') === true) lastAccess = auth.slice(5)
    return response
  }
  const auth = createAuthClient({ baseUrl: h.url, mode: 'memory', dpop: true, fetch: recording })
  t.teardown(() => auth.close())

  await auth.login('alice', 'alice-password')
  const key = await auth.dpopKey()
  t.ok(key !== null, 'the client has a key')
  t.equal(key!.extractable, false, 'its private key cannot be exported')
  t.equal(auth.boundTo(), key!.thumbprint, 'the access token is bound to the client\'s key')
  const logins = sent.filter((s) => s.path === '/auth/login')
  t.same(logins.map((s) => s.status), [400, 200], 'the login followed the gateway\'s nonce (400 use_dpop_nonce, then 200)')
  t.ok(logins.every((s) => s.dpop !== null), 'every login carried a proof')

  const me = await auth.fetch('/api/users/me')
  t.equal(me.status, 200, 'a proxied call with the bound token')
  t.match(sent.at(-1)?.authorization, /^DPoP /, 'sent as DPoP')
  t.equal((await auth.fetch('/auth/sessions')).status, 200, 'an own route')
  t.ok(lastAccess !== null && (claimsOf(lastAccess) as { cnf?: { jkt: string } }).cnf?.jkt === key!.thumbprint, 'cnf.jkt on the wire')

  const copied = await fetch(`${h.url}/api/users/me`, { headers: { authorization: `Bearer ${lastAccess!}` } })
  t.equal(copied.status, 401, 'the token copied out of the client is refused as Bearer')

  // Past the access token's expiry: the client refreshes with a proof and goes on.
  const firstExpiry = auth.expiresAt()!
  await waitUntilPast(firstExpiry + 500, 'the first access token to expire')
  const later = await auth.fetch('/api/users/me')
  t.equal(later.status, 200, 'after expiry: refreshed and answered')
  t.ok(sent.some((s) => s.path === '/auth/refresh' && s.status === 200 && s.dpop !== null), 'the refresh carried a proof')
  t.equal(auth.boundTo(), key!.thumbprint, 'the refreshed token is bound to the same key')
})
