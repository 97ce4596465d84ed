/**
 * Property-based test (fast-check) of the rotation script against real Redis (and a real Redis
 * Cluster with TEST_REDIS=cluster): under any interleaving of concurrent refreshes that the test
 * generates — several "tabs", each presenting the token it holds, in concurrent batches, some
 * replaying an older token — a refresh token never has two different successors, every answer is
 * 200 or a documented 401/429, and once a session is revoked for reuse no token of it is accepted.
 */
import t from 'tap'
import fc from 'fast-check'
import { build } from '../helper.js'
import { RELAXED_LIMITS, refresh } from '../helpers/auth.js'

interface Step { tabs: number[], stale: boolean }


t.test('rotation never forks a chain under generated interleavings', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS } })
  const steps = fc.array(fc.record({ tabs: fc.uniqueArray(fc.nat({ max: 5 }), { minLength: 1, maxLength: 6 }), stale: fc.boolean() }),
    { minLength: 1, maxLength: 4 })
  let runs = 0
  let rotations = 0
  let reuses = 0

  // Each broken invariant throws its own message (fast-check reports it with the counterexample).
  await fc.assert(fc.asyncProperty(steps, async (plan: Step[]) => {
    runs++
    const login = await h.login('alice')
    const tabs: string[] = Array.from({ length: 6 }, () => login.refresh)
    const history: string[] = [login.refresh]
    const successor = new Map<string, string>()
    let revoked = false
    for (const step of plan) {
      // Each tab presents its own token, or (stale) the oldest of the chain: a replay from a stale tab.
      const presented = step.tabs.map((tab) => step.stale && tab === step.tabs[0] ? history[0]! : tabs[tab]!)
      // A reuse detected in this batch binds the batches after it: a concurrent refresh of the same
      // batch that Redis ran before the detection was rightly accepted (on a busy machine the
      // requests of one batch reach Redis in any order).
      const revokedBefore = revoked
      const answers = await Promise.all(presented.map((token) => refresh(h, token)))
      for (const [i, res] of answers.entries()) {
        const token = presented[i]!
        if (res.status === 200) {
          if (revokedBefore) throw new Error('a session revoked for reuse accepted a refresh again')
          const next = res.body.refresh as string
          const known = successor.get(token)
          if (known !== undefined && known !== next) throw new Error('a refresh token got two different successors')
          successor.set(token, next)
          if (!history.includes(next)) { history.push(next); rotations++ }
          tabs[step.tabs[i]!] = next
        } else if (res.status === 401 && ['token_reused', 'token_revoked', 'token_invalid'].includes(res.body?.code)) {
          if (res.body.code === 'token_reused') { revoked = true; reuses++ }
        } else {
          throw new Error(`an undocumented answer: ${res.status} ${String(res.body?.code)}`)
        }
      }
    }
    // After a reuse, every token of the chain is refused.
    if (revoked) {
      for (const token of history) if ((await refresh(h, token)).status === 200) throw new Error(
        'a token of a revoked chain accepted after the reuse')
    }
  }), { numRuns: 12 })
  t.ok(rotations > 0, `${runs} generated interleavings, ${rotations} rotations, ${reuses} reuse detections`)
})
