/**
 * Property-based test (fast-check) of the per-replica session cache (docs/session-cache.md) on two
 * replicas sharing one Redis: under any generated interleaving of requests and revocations, sent
 * to either replica, in concurrent batches, a session is never accepted by a request sent after
 * the call that revoked it returned, whichever replica answered either. Requests sent while the
 * revocation is still in flight may go either way. Runs in both modes (`SESSION_CACHE=off` too).
 */
import t from 'tap'
import fc from 'fast-check'
import { performance } from 'node:perf_hooks'
import { build, type Harness } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'

type Op =
  | { kind: 'request', replica: number, session: number }
  | { kind: 'revoke', replica: number, session: number, how: 'logout' | 'delete' | 'admin' }

const SESSIONS = 3

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('request' as const), replica: fc.nat({ max: 1 }), session: fc.nat({ max: SESSIONS - 1 }) })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('revoke' as const),
      replica: fc.nat({ max: 1 }),
      session: fc.nat({ max: SESSIONS - 1 }),
      how: fc.constantFrom('logout' as const, 'delete' as const, 'admin' as const)
    })
  }
)

function sidOf (access: string): string {
  return (JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid
}

t.test('no session is accepted after the call revoking it returned, on either replica', async (t) => {
  const env = { ...RELAXED_LIMITS, USER_STATE_TTL: '3600' }
  const a = await build(t, { env })
  const b = await build(t, { env: { ...env, USERS_URL: a.config.upstreams.users }, redis: a.redis, keyRing: a.keyRing })
  const replicas: Harness[] = [a, b]
  const admin = await a.login('admin')
  let accepted = 0
  let refusedAfter = 0

  const plan = fc.array(fc.array(op, { minLength: 1, maxLength: 5 }), { minLength: 2, maxLength: 8 })
  await fc.assert(fc.asyncProperty(plan, async (batches: Op[][]) => {
    const sessions = await Promise.all(Array.from({ length: SESSIONS }, async () => (await a.login('alice')).access as string))
    // Both replicas hold every session in their caches before the plan starts.
    for (const h of replicas) for (const token of sessions) for (let i = 0; i < 2; i++) await h.request('GET', '/api/orders', { token })
    const revokedAt: Array<number | undefined> = []
    for (const batch of batches) {
      await Promise.all(batch.map(async (o) => {
        const h = replicas[o.replica]!
        const token = sessions[o.session]!
        if (o.kind === 'revoke') {
          const res = o.how === 'logout'
            ? await h.request('POST', '/auth/logout', { token, body: {} })
            : o.how === 'delete'
              ? await h.request('DELETE', `/auth/sessions/${sidOf(token)}`, { token })
              : await h.request('DELETE', `/admin/users/1001/sessions/${sidOf(token)}`, { token: admin.access })
          // A session already revoked answers 401 / 404: its first revocation counts.
          if ([200, 204].includes(res.status)) revokedAt[o.session] ??= performance.now()
          return
        }
        const sentAt = performance.now()
        const res = await h.request('GET', '/api/orders', { token })
        const revoked = revokedAt[o.session]
        if (res.status === 200) {
          accepted++
          if (revoked !== undefined
            && revoked < sentAt) throw new Error(`session ${o.session} accepted by replica ${o.replica} after its revocation returned`)
        } else if (res.status === 401 && (res.body as { code?: string }).code === 'token_revoked') {
          if (revoked !== undefined && revoked < sentAt) refusedAfter++
        } else {
          throw new Error(`an undocumented answer: ${res.status} ${res.text.slice(0, 80)}`)
        }
      }))
    }
  }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 40) })
  t.ok(
    accepted > 0 && refusedAfter > 0,
    `the plans exercised both sides (${accepted} accepted, ${refusedAfter} refused after a revocation)`
  )
})
