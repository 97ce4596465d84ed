/**
 * DPoP with a client library no one here wrote: oauth4webapi (certified OAuth client) gets a token
 * by client credentials with a DPoP proof for a client registered `dpop_bound`, follows the
 * gateway's nonces (DPOP_NONCE) at the token endpoint and at a protected resource (a second
 * replica, another origin, so the library must learn its nonce there), and calls the proxy with
 * the bound token. The same client without a proof gets no token.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { build } from '../helper.js'
import { RELAXED_LIMITS, claimsOf } from '../helpers/auth.js'

const ISSUER = 'https://auth.example.test'
const insecure = { [oauth.allowInsecureRequests]: true }

/** Runs `attempt`, once more after a nonce error (the library keeps the nonce it was handed). */
async function withNonceRetry<T> (attempt: () => Promise<T>): Promise<{ value: T, retried: boolean }> {
  try {
    return { value: await attempt(), retried: false }
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    return { value: await attempt(), retried: true }
  }
}

t.test('oauth4webapi: client credentials with DPoP, nonces, a protected resource', async (t) => {
  const env = { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000', JWT_ISSUER: ISSUER, DPOP_NONCE: 'true' }
  const h = await build(t, { env })
  const other = await build(t, { env, redis: h.redis, keyRing: h.keyRing })
  const admin = await h.login('admin')
  const created = await h.request(
    'POST',
    '/admin/clients',
    { token: admin.access, body: { name: 'bound worker', scopes: ['orders:read'], dpop_bound: true } }
  )
  t.equal(created.status, 201)
  t.equal(created.body.dpop_bound, true, 'registered as dpop_bound')
  const listed = await h.request('GET', '/admin/clients', { token: admin.access })
  t.equal(
    (listed.body.clients as Array<{ client_id: string, dpop_bound: boolean }>)
      .find((c) => c.client_id === created.body.client_id)?.dpop_bound,
    true,
    'listed as dpop_bound'
  )

  const as = await oauth.processDiscoveryResponse(
    new URL(ISSUER),
    await oauth.discoveryRequest(new URL(h.url), { algorithm: 'oauth2', ...insecure })
  )
  t.ok(as.dpop_signing_alg_values_supported?.includes('ES256'), 'the metadata names ES256 for proofs')
  const client: oauth.Client = { client_id: created.body.client_id }
  const basic = oauth.ClientSecretBasic(created.body.client_secret)

  await t.test('without a proof a dpop_bound client gets no token', async (t) => {
    const err = await oauth.processClientCredentialsResponse(
      as,
      client,
      await oauth.clientCredentialsGrantRequest(as, client, basic, { scope: 'orders:read' }, insecure)
    ).then(() => null, (e: unknown) => e)
    t.ok(err instanceof oauth.ResponseBodyError, 'an OAuth error')
    t.equal((err as oauth.ResponseBodyError).error, 'invalid_dpop_proof')
    t.equal((err as oauth.ResponseBodyError).status, 400)
  })

  await t.test('with a proof: a DPoP token, nonces followed, the resource reached', async (t) => {
    const keyPair = await oauth.generateKeyPair('ES256')
    const DPoP = oauth.DPoP(client, keyPair)
    const grant = await withNonceRetry(async () => await oauth.processClientCredentialsResponse(as, client,
      await oauth.clientCredentialsGrantRequest(as, client, basic, { scope: 'orders:read' }, { ...insecure, DPoP })))
    t.ok(grant.retried, 'the token endpoint asked for its nonce first')
    t.equal(grant.value.token_type, 'dpop', 'token_type DPoP (normalized by the library)')
    const jkt = (claimsOf(grant.value.access_token).cnf as { jkt: string }).jkt
    t.match(jkt, /^[\w-]{43}$/, 'cnf.jkt in the token')

    // The other replica is another origin to the library: it learns that replica's demand for a nonce there.
    const call = async (base: string): Promise<Response> => await oauth.protectedResourceRequest(
      grant.value.access_token,
      'GET',
      new URL(`${base}/api/orders`),
      undefined,
      undefined,
      { ...insecure, DPoP }
    )
    const onOther = await withNonceRetry(async () => await call(other.url))
    t.ok(onOther.retried, 'the resource asked for a nonce (401 use_dpop_nonce), the library retried')
    t.equal(onOther.value.status, 200, 'the bound token reaches the proxied route')
    const again = await call(h.url)
    t.equal(again.status, 200, 'and on the first replica, with the nonce it already knows')

    const asBearer = await fetch(`${h.url}/api/orders`, { headers: { authorization: `Bearer ${grant.value.access_token}` } })
    t.equal(asBearer.status, 401, 'the same token as Bearer: 401')
    t.equal(((await asBearer.json()) as { code: string }).code, 'token_invalid')
  })
})
