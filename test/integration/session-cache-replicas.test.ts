/**
 * The per-replica session cache (docs/session-cache.md) against the race it must close: a session
 * revoked through replica a is refused by replica b at the very next request, although b holds
 * the session in its cache and learns of the revocation asynchronously. Every round warms b's
 * cache, revokes through a, and calls b as soon as a has answered: 1,000 rounds in a row, every
 * kind of revocation and role change. Runs in both modes (`SESSION_CACHE=off` too).
 */
import t, { type Test } from 'tap'
import { build, type Harness, type HttpResult } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { clientToken, registerClient } from '../helpers/machine-clients.js'
import { formPost } from '../helpers/oauth-standard.js'

const ROUNDS = Number(process.env.SESSION_CACHE_ROUNDS ?? 1000)

interface Tokens { access: string, refresh: string }

async function replicas (t: Test): Promise<[Harness, Harness]> {
  const env = { ...RELAXED_LIMITS, USER_STATE_TTL: '3600' }
  const a = await build(t, { env })
  const b = await build(t, { env: { ...env, USERS_URL: a.config.upstreams.users }, redis: a.redis, keyRing: a.keyRing })
  return [a, b]
}

/** Calls b until its answer is cached (two 200s in a row: the second is served from the cache when on). */
async function warm (b: Harness, token: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const res = await b.request('GET', '/api/orders', { token })
    if (res.status !== 200) throw new Error(`warming b: ${res.status} ${res.text}`)
  }
}

function refused (res: HttpResult): boolean {
  return res.status === 401 && (res.body as { code?: string } | null)?.code === 'token_revoked'
}

t.test(`revoked through replica a, refused by replica b at once: ${ROUNDS} rounds in a row`, async (t) => {
  const [a, b] = await replicas(t)
  const admin = await a.login('admin')
  const kinds = ['logout', 'logout-all', 'session-delete', 'admin-revoke', 'admin-revoke-one', 'roles'] as const
  const failures: string[] = []
  let adminRoute = false
  for (let round = 0; round < ROUNDS && failures.length < 5; round++) {
    const kind = kinds[round % kinds.length]!
    const alice = await a.login('alice') as Tokens & { session_id?: string }
    await warm(b, alice.access)
    const sid = (JSON.parse(Buffer.from(alice.access.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid
    let status: number
    if (kind === 'logout') {
      status = (await a.request('POST', '/auth/logout', { token: alice.access, body: {} })).status
    } else if (kind === 'logout-all') {
      status = (await a.request('POST', '/auth/logout-all', { token: alice.access })).status
    } else if (kind === 'session-delete') {
      status = (await a.request('DELETE', `/auth/sessions/${sid}`, { token: alice.access })).status
    } else if (kind === 'admin-revoke') {
      status = (await a.request('DELETE', '/admin/users/1001/sessions', { token: admin.access })).status
    } else if (kind === 'admin-revoke-one') {
      status = (await a.request('DELETE', `/admin/users/1001/sessions/${sid}`, { token: admin.access })).status
    } else {
      // A role change: b authorizes alice's older token by her new roles at once.
      await b.request('GET', '/api/users', { token: alice.access })
      adminRoute = !adminRoute
      const roles = adminRoute ? ['user', 'admin'] : ['user']
      status = (await a.request('PATCH', '/api/users/1001', { token: admin.access, body: { roles } })).status
      const onB = await b.request('GET', '/api/users', { token: alice.access })
      if (onB.status !== (adminRoute ? 200 : 403)) failures.push(`round ${round} roles ${roles.join(',')}: b answered ${onB.status}`)
      await a.request('POST', '/auth/logout', { token: alice.access, body: {} })
      continue
    }
    if (status !== 204 && status !== 200) { failures.push(`round ${round} ${kind}: revocation answered ${status}`); continue }
    const onB = await b.request('GET', '/api/orders', { token: alice.access })
    if (!refused(onB)) failures.push(`round ${round} ${kind}: b answered ${onB.status} ${onB.text.slice(0, 80)}`)
  }
  if (adminRoute) await a.request('PATCH', '/api/users/1001', { token: admin.access, body: { roles: ['user'] } })
  t.same(failures, [], `every revoked session refused by the other replica at the next request (${ROUNDS} rounds)`)
})

t.test(`machine clients: a token revoked or a client deleted through a, refused by b at once: ${Math.ceil(ROUNDS / 5)} rounds`,
  async (t) => {
  const [a, b] = await replicas(t)
  const admin = await a.login('admin')
  const failures: string[] = []
  let client = await registerClient(a.url, admin.access, ['orders:read'], 'cached job')
  for (let round = 0; round < Math.ceil(ROUNDS / 5) && failures.length < 5; round++) {
    const token = await clientToken(a.url, client)
    await warm(b, token)
    const deleting = round % 2 === 1
    const status = deleting
      ? (await a.request('DELETE', `/admin/clients/${client.client_id}`, { token: admin.access })).status
      : (await formPost(a.url, '/oauth/revoke', { form: [['token', token]], client })).status
    if (status !== 200 && status !== 204) failures.push(`round ${round}: revocation answered ${status}`)
    const onB = await b.request('GET', '/api/orders', { token })
    if (!refused(onB)) failures.push(`round ${round} ${deleting ? 'delete' : 'revoke'}: b answered ${onB.status}`)
    if (deleting) client = await registerClient(a.url, admin.access, ['orders:read'], `cached job ${round}`)
  }
  t.same(failures, [], 'every revoked client token refused by the other replica at the next request')
})

t.test('a flush of Redis (data loss) drops every cached session on every replica', async (t) => {
  const [a, b] = await replicas(t)
  const alice = await a.login('alice')
  await warm(a, alice.access)
  await warm(b, alice.access)
  await a.redis.flushAll()
  t.ok(refused(await a.request('GET', '/api/orders', { token: alice.access })), 'refused on a')
  t.ok(refused(await b.request('GET', '/api/orders', { token: alice.access })), 'refused on b')
})
