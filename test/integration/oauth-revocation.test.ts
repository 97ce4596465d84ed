/**
 * Token revocation (RFC 7009) over real HTTP: a user's access or refresh token revokes its session
 * without client authentication; a machine client revokes its own tokens only; unknown and
 * invalid tokens are 200 and change nothing; every error of the endpoint; the audit trail.
 */
import t, { type Test } from 'tap'
import { build, type Harness } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { waitFor } from '../helpers/redis-server.js'
import { clientToken, registerClient, type RawResult } from '../helpers/machine-clients.js'
import { exchange, formPost } from '../helpers/oauth-standard.js'

function assertOAuthError (t: Test, res: RawResult, status: number, error: string, what: string): void {
  t.equal(res.status, status, `${what}: status ${status}`)
  t.equal(res.body?.error, error, `${what}: error ${error}`)
  t.match(res.headers['content-type'], /^application\/json/, `${what}: application/json`)
  if (status === 401) t.match(res.headers['www-authenticate'], /^Basic\b/, `${what}: WWW-Authenticate Basic`)
}

t.test('revocation', async (t) => {
  const h: Harness = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000' } })
  const admin = await h.login('admin')
  const job = await registerClient(h.url, admin.access, ['orders:read'], 'job')
  const other = await registerClient(h.url, admin.access, ['orders:read'], 'other job')
  const orders = async (token: string): Promise<number> => (await h.request('GET', '/api/orders', { token })).status
  const revoke = (form: Array<[string, string]>, client?: typeof job, secret?: string): Promise<RawResult> =>
    formPost(h.url, '/oauth/revoke', { form, ...(client !== undefined ? { client } : {}), ...(secret !== undefined ? { secret } : {}) })

  t.test('a user\'s access token, without client authentication, revokes its session', async (t) => {
    const first = await h.login('alice')
    const second = await h.login('alice')
    const res = await revoke([['token', first.access], ['token_type_hint', 'access_token']])
    t.equal(res.status, 200)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(await orders(first.access), 401, 'the access token is refused from the next request on')
    t.equal((await h.request('POST', '/auth/refresh', { body: { refresh: first.refresh } })).status, 401, 'its refresh token too')
    t.equal(await orders(second.access), 200, 'another session of the user lives on')
    t.equal((await revoke([['token', first.access]])).status, 200, 'revoking it again: 200')
    let events: Array<Record<string, unknown>> = []
    await waitFor(async () => {
      events = (await h.request('GET', '/admin/events?event=session_revoked&limit=1000', { token: admin.access })).body.events
      return events.some((e) => e.reason === 'oauth_revoke' && e.user_id === first.user.id)
    }, 'session_revoked event')
    t.ok(events.some((e) => e.reason === 'oauth_revoke' && e.user_id === first.user.id),
      'session_revoked (oauth_revoke) in the audit trail')
  })

  t.test('a refresh token revokes its session, with client authentication too', async (t) => {
    const bob = await h.login('bob')
    t.equal((await revoke([['token', bob.refresh], ['token_type_hint', 'refresh_token']], job)).status, 200)
    t.equal(await orders(bob.access), 401, 'the session\'s access token is refused')
  })

  t.test('unknown, invalid and expired tokens: 200, nothing changes', async (t) => {
    const alice = await h.login('alice')
    for (const token of ['garbage', 'a.b.c', `${alice.access.slice(0, -4)}AAAA`, alice.access.split('.').slice(0, 2).join('.') + '.']) {
      t.equal((await revoke([['token', token]])).status, 200, `token ${token.slice(0, 12)}...: 200`)
    }
    t.equal(await orders(alice.access), 200, 'the real token still works')
  })

  t.test('a machine client revokes its own token only', async (t) => {
    const mine = await clientToken(h.url, job)
    const mySecond = await clientToken(h.url, job)
    const theirs = await clientToken(h.url, other)

    assertOAuthError(t, await revoke([['token', theirs]], job), 400, 'unauthorized_client', 'another client\'s token')
    t.equal(await orders(theirs), 200, 'another client\'s token stays live')
    assertOAuthError(t, await revoke([['token', mine]]), 401, 'invalid_client', 'a client\'s token without client authentication')
    t.equal(await orders(mine), 200, 'still live')

    t.equal((await revoke([['token', mine]], job)).status, 200, 'its own token: 200')
    t.equal(await orders(mine), 401, 'refused from the next request on')
    const verify = await h.request('POST', '/auth/verify', { body: { token: mine } })
    t.equal(verify.status, 401, '/auth/verify agrees')
    t.equal(await orders(mySecond), 200, 'the client\'s other token lives on')
    t.equal(await orders(await clientToken(h.url, job)), 200, 'and the client gets new ones')
    let events: Array<Record<string, unknown>> = []
    await waitFor(async () => {
      events = (await h.request('GET', '/admin/events?event=token_revoked', { token: admin.access })).body.events
      return events.length > 0
    }, 'token_revoked event')
    t.match(events[0], { client_id: job.client_id, reason: 'oauth_revoke' }, 'token_revoked in the audit trail')
  })

  t.test('a delegated token revokes the user\'s session', async (t) => {
    const exchanger = await registerClient(h.url, admin.access, ['token-exchange'], 'exchanger')
    const bob = await h.login('bob')
    const delegated = await exchange(h.url, exchanger, bob.access, 'orders')
    t.equal((await revoke([['token', delegated]])).status, 200)
    t.equal(await orders(delegated), 401, 'the delegated token is refused')
    t.equal(await orders(bob.access), 401, 'and so is the session it was exchanged from')
  })

  t.test('errors', async (t) => {
    const alice = await h.login('alice')
    assertOAuthError(t, await revoke([['token', alice.access]], job, 'z'.repeat(43)), 401, 'invalid_client',
      'a wrong secret, even for a user\'s token')
    t.equal(await orders(alice.access), 200, 'nothing revoked')
    assertOAuthError(t, await revoke([]), 400, 'invalid_request', 'no token')
    assertOAuthError(t, await revoke([['token', 'a'], ['token', 'b']]), 400, 'invalid_request', 'token twice')
    const json = await formPost(h.url, '/oauth/revoke', { headers: { 'content-type': 'application/json' } })
    assertOAuthError(t, json, 400, 'invalid_request', 'a JSON body')
    const malformed = await formPost(h.url, '/oauth/revoke', { form: [['token', alice.access]], headers: { authorization: 'Bearer abc' } })
    assertOAuthError(t, malformed, 401, 'invalid_client', 'an Authorization header that is not Basic')
    const both = await formPost(h.url, '/oauth/revoke',
      { client: job, form: [['token', alice.access], ['client_id', job.client_id], ['client_secret', job.client_secret]] })
    assertOAuthError(t, both, 400, 'invalid_request', 'two client authentication methods')
    const big = await formPost(h.url, '/oauth/revoke', { form: [['token', 'x'.repeat(20_000)]] })
    t.equal(big.status, 413, 'a body too large: 413')
    t.equal(big.body?.error, 'invalid_request')
    t.equal(await orders(alice.access), 200, 'still nothing revoked')
  })
})

t.test('unauthenticated revocation is limited per client IP', async (t) => {
  const h: Harness = await build(t, { env: { ...RELAXED_LIMITS, VERIFY_IP_LIMIT: '2' } })
  const from = '127.0.0.7'
  t.equal((await formPost(h.url, '/oauth/revoke', { form: [['token', 'x']], from })).status, 200)
  t.equal((await formPost(h.url, '/oauth/revoke', { form: [['token', 'x']], from })).status, 200)
  const limited = await formPost(h.url, '/oauth/revoke', { form: [['token', 'x']], from })
  assertOAuthError(t, limited, 429, 'rate_limited', 'past VERIFY_IP_LIMIT')
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After')
})
