/**
 * The OAuth endpoints while Redis is away: 503 `temporarily_unavailable` (RFC 6749 JSON, with
 * Retry-After where the store gives one), never a 500, never a wrong `{"active": false}` and never
 * a silent 200 from revocation; the metadata document is still served.
 */
import t from 'tap'
import { build } from '../helper.js'
import { RELAXED_LIMITS } from '../helpers/auth.js'
import { waitFor } from '../helpers/redis-server.js'
import { redisUp } from '../helpers/metrics.js'
import { registerClient } from '../helpers/machine-clients.js'
import { ACCESS_TOKEN_TYPE, formPost, introspect, TOKEN_EXCHANGE } from '../helpers/oauth-standard.js'

t.test('OAuth endpoints during a Redis outage', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000' } })
  const admin = await h.login('admin')
  const client = await registerClient(h.url, admin.access, ['tokens:introspect', 'token-exchange'], 'resource server')
  const alice = await h.login('alice')

  await h.redis.kill()
  const answers = {
    introspect: await introspect(h.url, client, alice.access),
    'revoke (user token)': await formPost(h.url, '/oauth/revoke', { form: [['token', alice.access]] }),
    'revoke (authenticated)': await formPost(h.url, '/oauth/revoke', { client, form: [['token', alice.access]] }),
    exchange: await formPost(h.url, '/oauth/token',
      { client, form: [['grant_type', TOKEN_EXCHANGE], ['subject_token', alice.access], ['subject_token_type', ACCESS_TOKEN_TYPE],
        ['audience', 'orders']] })
  }
  for (const [what, res] of Object.entries(answers)) {
    t.equal(res.status, 503, `${what}: 503`)
    t.equal(res.body?.error, 'temporarily_unavailable', `${what}: temporarily_unavailable`)
    t.notMatch(res.text, /stack|ECONNREFUSED/i, `${what}: no internals`)
  }
  t.equal((await h.request('GET', '/.well-known/oauth-authorization-server')).status, 200, 'the metadata document needs no Redis')

  await h.redis.restart()
  await waitFor(() => redisUp(h.url), 'the gateway back on Redis (readiness ignores Redis)', 10_000)
  t.equal((await h.request('GET', '/.well-known/oauth-authorization-server')).status, 200)
})
