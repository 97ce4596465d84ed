/**
 * We speak OAuth 2.0, not just our reading of it: a Node client written with oauth4webapi (a
 * certified OAuth client library) discovers the gateway from its metadata document (RFC 8414),
 * gets a token by client credentials, exchanges a user's token (RFC 8693), introspects tokens as
 * JSON and as signed JWTs (RFC 7662, RFC 9701; the library checks the signature against the
 * gateway's jwks_uri) and revokes them (RFC 7009), with HTTP Basic and body credentials. The
 * tokens introspected: a user's access and refresh token, a client's, a forged, an expired, a
 * DPoP-bound, an exchanged and a revoked one; the exchanged token also tries another audience and
 * a refresh through the library, and is introspected again once its session is gone.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { SignJWT } from 'jose'
import { build } from '../helper.js'
import { claimsOf, RELAXED_LIMITS } from '../helpers/auth.js'
import { clientToken, registerClient } from '../helpers/machine-clients.js'
import { dpopKey } from '../helpers/dpop.js'

const ISSUER = 'https://auth.example.test'
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
/** The test gateway speaks plain http on loopback. */
const insecure = { [oauth.allowInsecureRequests]: true }

/** The OAuth error the library raised for a promise (its ResponseBodyError), or null. */
async function bodyError (promise: Promise<unknown>): Promise<{ error: string, status: number } | null> {
  try {
    await promise
    return null
  } catch (err) {
    return err instanceof oauth.ResponseBodyError ? { error: err.error, status: err.status } : null
  }
}

/** The status of a protected resource request made by the library (a 401 comes back as its challenge error). */
async function resourceStatus (token: string, url: string): Promise<number> {
  try {
    return (await oauth.protectedResourceRequest(token, 'GET', new URL(url), undefined, undefined, insecure)).status
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) return err.status
    throw err
  }
}

t.test('oauth4webapi against the gateway', async (t) => {
  const h = await build(t, { env: { ...RELAXED_LIMITS, API_CLIENT_LIMIT: '10000', JWT_ISSUER: ISSUER } })
  const admin = await h.login('admin')
  const registered = await registerClient(h.url, admin.access, ['tokens:introspect', 'token-exchange', 'orders:read'],
    'node resource server')
  const other = await registerClient(h.url, admin.access, ['orders:read'], 'another client')

  // Discovery: the document at the gateway's address, its issuer checked against JWT_ISSUER.
  const as = await oauth.processDiscoveryResponse(new URL(ISSUER),
    await oauth.discoveryRequest(new URL(h.url), { algorithm: 'oauth2', ...insecure }))
  t.equal(as.issuer, ISSUER)
  t.equal(as.token_endpoint, `${h.url}/oauth/token`)
  const client: oauth.Client = { client_id: registered.client_id }
  const basic = oauth.ClientSecretBasic(registered.client_secret)
  const post = oauth.ClientSecretPost(registered.client_secret)

  const introspect = async (token: string, auth = basic, c = client): Promise<oauth.IntrospectionResponse> =>
    await oauth.processIntrospectionResponse(as, c, await oauth.introspectionRequest(as, c, auth, token, insecure))

  t.test('client credentials', async (t) => {
    const res = await oauth.processClientCredentialsResponse(as, client,
      await oauth.clientCredentialsGrantRequest(as, client, basic, { scope: 'orders:read' }, insecure))
    t.equal(res.token_type, 'bearer', 'the library normalizes Bearer')
    t.equal(res.scope, 'orders:read')
    t.notOk('refresh_token' in res, 'no refresh token')
    t.equal((await h.request('GET', '/api/orders', { token: res.access_token })).status, 200, 'the token works on the proxy')
    t.match(await introspect(res.access_token, post), { active: true, client_id: registered.client_id, scope: 'orders:read' },
      'introspected with body credentials')
  })

  t.test('introspection of each kind of token', async (t) => {
    const alice = await h.login('alice')
    t.match(await introspect(alice.access), { active: true, token_type: 'Bearer', sub: alice.user.id, username: 'alice', iss: ISSUER })
    t.match(await introspect(alice.refresh), { active: true, token_type: 'refresh_token' })
    t.match(await introspect(await clientToken(h.url, other)), { active: true, client_id: other.client_id })
    t.same(await introspect(alice.access.slice(0, -8) + 'AAAAAAAA'), { active: false }, 'forged')
    const exchanged = await oauth.processGenericTokenEndpointResponse(as, client,
      await oauth.genericTokenEndpointRequest(as, client, basic, TOKEN_EXCHANGE, {
      subject_token: alice.access, subject_token_type: ACCESS_TOKEN_TYPE, audience: 'orders'
    }, insecure))
    t.equal(exchanged.issued_token_type, ACCESS_TOKEN_TYPE, 'token exchange through the library')
    t.match(await introspect(exchanged.access_token), { active: true, act: { sub: `client:${registered.client_id}` }, upstream: 'orders' })
    t.equal(await resourceStatus(exchanged.access_token, `${h.url}/api/orders`), 200, 'the exchanged token on its audience\'s route')
    t.equal(await resourceStatus(exchanged.access_token, `${h.url}/api/users/me`), 403, 'another audience: 403')
    t.same(await bodyError(oauth.processRefreshTokenResponse(as, client,
      await oauth.refreshTokenGrantRequest(as, client, basic, exchanged.access_token, insecure))),
    { error: 'unsupported_grant_type', status: 400 }, 'the exchanged token cannot be refreshed')

    const now = Math.floor(Date.now() / 1000)
    const expired = await new SignJWT({ ...claimsOf(alice.access), iat: now - 120, exp: now - 60 })
      .setProtectedHeader({ alg: 'ES256', kid: h.keyRing.signing.kid, typ: 'JWT' })
      .sign(h.keyRing.signing.privateKey)
    t.same(await introspect(expired), { active: false }, 'expired (the gateway\'s own key, the session alive)')

    const key = await dpopKey()
    const bound = await h.request('POST', '/auth/login', {
      body: { username: 'bob', password: 'bob-password' },
      headers: { dpop: await key.proof({ method: 'POST', url: `${h.url}/auth/login` }) }
    })
    t.equal(bound.body.token_type, 'DPoP', 'a DPoP-bound login')
    t.match(await introspect(bound.body.access as string), { active: true, token_type: 'DPoP', cnf: { jkt: key.jkt }, username: 'bob' },
      'DPoP-bound: token_type DPoP and the key\'s thumbprint')

    await h.request('POST', '/auth/logout', { token: alice.access })
    t.same(await introspect(alice.access), { active: false }, 'revoked (logout)')
    t.same(await introspect(exchanged.access_token), { active: false }, 'the exchanged token died with the session')
    t.equal(await resourceStatus(exchanged.access_token, `${h.url}/api/orders`), 401, 'and the proxy refuses it')
  })

  t.test('the signed answer, verified by the library against jwks_uri', async (t) => {
    const bob = await h.login('bob')
    const jwtClient: oauth.Client = { ...client, introspection_signed_response_alg: 'ES256' }
    const response = await oauth.introspectionRequest(as, jwtClient, basic, bob.access, insecure)
    t.match(response.headers.get('content-type'), /^application\/token-introspection\+jwt/)
    const answer = await oauth.processIntrospectionResponse(as, jwtClient, response)
    await oauth.validateApplicationLevelSignature(as, response, insecure)
    t.match(answer, { active: true, sub: bob.user.id, username: 'bob' })
  })

  t.test('revocation', async (t) => {
    const bob = await h.login('bob')
    const res = await oauth.revocationRequest(as, client, basic, bob.access,
      { ...insecure, additionalParameters: { token_type_hint: 'access_token' } })
    t.equal(await oauth.processRevocationResponse(res), undefined, '200')
    t.equal((await h.request('GET', '/api/orders', { token: bob.access })).status, 401, 'the user\'s token is refused')
    const mine = await clientToken(h.url, registered)
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, post, mine, insecure))
    t.same(await introspect(mine), { active: false }, 'its own client token revoked')
    const theirs = await clientToken(h.url, other)
    const refused = await oauth.revocationRequest(as, client, basic, theirs, insecure)
    t.same(await bodyError(oauth.processRevocationResponse(refused)), { error: 'unauthorized_client', status: 400 },
      'another client\'s token: the library\'s ResponseBodyError')
    t.match(await introspect(theirs), { active: true }, 'and it stays live')
  })

  t.test('errors reach the library as OAuth errors', async (t) => {
    const alice = await h.login('alice')
    // RFC 6749 5.2: the 401 names the Basic scheme, which the library reports as a challenge.
    const wrong = await introspect(alice.access, oauth.ClientSecretBasic('x'.repeat(43))).then(() => null, (err: unknown) => err)
    t.ok(wrong instanceof oauth.WWWAuthenticateChallengeError, 'a wrong secret: the library\'s challenge error')
    if (wrong instanceof oauth.WWWAuthenticateChallengeError) {
      t.equal(wrong.status, 401)
      t.equal(wrong.cause[0]?.scheme, 'basic', 'the Basic scheme')
      t.equal((await wrong.response.json() as { error?: string }).error, 'invalid_client', 'and the body says invalid_client')
    }
    const plain: oauth.Client = { client_id: other.client_id }
    t.same(await bodyError(introspect(alice.access, oauth.ClientSecretBasic(other.client_secret), plain)),
      { error: 'insufficient_scope', status: 403 }, 'a client without tokens:introspect')
  })
})
