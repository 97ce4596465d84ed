/**
 * Signs and verifies the gateway's JWTs: access and refresh tokens, and the short-lived identity
 * assertions sent to upstreams. Verification is strict (docs/tokens-and-sessions.md): ES256 only, a known kid,
 * the configured iss/aud, every required claim, no future nbf/iat; header members such as jwk,
 * jku and x5u are ignored because the key comes from the key ring by kid alone.
 */
import { hash, randomBytes } from 'node:crypto'
import { SignJWT, jwtVerify, errors as joseErrors, type JWTHeaderParameters } from 'jose'
import { gatewayError } from '../errors.js'
import { claimsCheckers, isClientClaims, type AccessClaims, type ClaimsOf, type ClientAccessClaims, type RefreshClaims,
  type TokenType } from './claims.js'
import { SIGNING_ALG, type KeyRing } from './key-ring.js'
import { ExpiringLru } from '../lib/expiring-lru.js'

/** Seconds an `iat` may lie in the future (clock skew between replicas). */
export const IAT_LEEWAY_SECONDS = 5
/** Tokens longer than this are refused before any parsing. */
const MAX_TOKEN_LENGTH = 8192
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

export interface TokenServiceOptions {
  issuer: string
  audience: string
  accessTtl: number
  refreshTtl: number
  /** Verified tokens kept in memory; 0 turns the cache off. */
  cacheSize?: number
}

export interface Identity { userId: string, username: string, roles: string[] }
export interface IssuedToken { token: string, jti: string, exp: number }
/** What a token is bound to: a DPoP key's thumbprint (`cnf.jkt`) and/or a fingerprint cookie's hash (`fgp`). */
export interface TokenBinding { jkt?: string | undefined, fgp?: string | undefined }

function bindingClaims (binding: TokenBinding | undefined): Record<string, unknown> {
  return {
    ...(binding?.jkt !== undefined ? { cnf: { jkt: binding.jkt } } : {}),
    ...(binding?.fgp !== undefined ? { fgp: binding.fgp } : {})
  }
}

/** How and when the user authenticated: the `amr` and `auth_time` claims (RFC 8176, OpenID Connect). */
export interface AuthContext { amr: string[], authTime: number }

const authClaims = (auth: AuthContext | undefined): Record<string, unknown> => auth === undefined ? {} : {
  amr: auth.amr,
  auth_time: auth.authTime
}

/** A random id for sessions and token ids: 128 bits, base64url. */
export function newId (): string {
  return randomBytes(16).toString('base64url')
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/**
 * The checks after a valid signature: the token type, the claims' schema (user or machine client),
 * a client token's subject, and an `iat` not in the future. Throws `token_invalid`.
 */
export function checkedClaims (payload: unknown, expected: TokenType, now: number): AccessClaims | RefreshClaims | ClientAccessClaims {
  const claims = payload as { token_type?: unknown, iat: number }
  if (claims.token_type !== expected) throw gatewayError('token_invalid', `not an ${expected} token`)
  const client = expected === 'access' && typeof payload === 'object' && payload !== null && isClientClaims(payload)
  const checker = client ? claimsCheckers.client : claimsCheckers[expected]
  if (!checker.Check(payload)) throw gatewayError('token_invalid', 'unexpected claims')
  if (client && (payload as ClientAccessClaims).sub !== `client:${(payload as ClientAccessClaims).client_id}`) throw gatewayError(
    'token_invalid', 'unexpected claims')
  // A delegated token names both the acting client and its upstream, never one without the other.
  if (!client && expected === 'access' && ('act' in (payload as object)) !== ('upstream' in (payload as object))) throw gatewayError(
    'token_invalid', 'unexpected claims')
  if (claims.iat > now + IAT_LEEWAY_SECONDS) throw gatewayError('token_invalid', 'issued in the future')
  return payload as AccessClaims | RefreshClaims | ClientAccessClaims
}

/**
 * The verified-token cache's key: the token's SHA-256. It binds the whole token like the token
 * itself would, but takes 43 characters instead of the token's 400-600 (and of the Authorization
 * header a token sliced from it keeps alive), and the cache holds no usable bearer token.
 */
function cacheKey (token: string): string {
  // One-shot: no Hash object per request.
  return hash('sha256', token, 'base64url')
}

export class TokenService {
  readonly #keys: KeyRing
  readonly #opts: TokenServiceOptions
  readonly #cache: ExpiringLru<AccessClaims | RefreshClaims | ClientAccessClaims>

  constructor (keys: KeyRing, opts: TokenServiceOptions) {
    this.#keys = keys
    this.#opts = opts
    this.#cache = new ExpiringLru(opts.cacheSize ?? 10000)
  }

  async #sign (claims: Record<string, unknown>, audience: string, ttl: number): Promise<IssuedToken> {
    const iat = nowSeconds()
    const jti = newId()
    const exp = iat + ttl
    const token = await new SignJWT({ ...claims, jti })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: this.#keys.signing.kid, typ: 'JWT' })
      .setIssuer(this.#opts.issuer)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.#keys.signing.privateKey)
    return { token, jti, exp }
  }

  signAccess (identity: Identity, sessionId: string, binding?: TokenBinding, auth?: AuthContext): Promise<IssuedToken> {
    return this.#sign({
      ...authClaims(auth),
      sub: identity.userId,
      user_id: identity.userId,
      sid: sessionId,
      token_type: 'access',
      username: identity.username,
      roles: identity.roles,
      ...bindingClaims(binding)
    }, this.#opts.audience, this.#opts.accessTtl)
  }

  /** A machine client's access token (docs/machine-clients.md): `sub` = `client:<id>`, its scope, no session, user or roles. */
  signClientAccess (clientId: string, scope: string, jkt?: string): Promise<IssuedToken> {
    return this.#sign(
      { sub: `client:${clientId}`, client_id: clientId, scope, token_type: 'access', ...bindingClaims({ jkt }) },
      this.#opts.audience,
      this.#opts.accessTtl
    )
  }

  /**
   * A delegated access token (token exchange, src/routes/oauth/token-exchange.ts): the user's identity and
   * session, `act` naming the client that acts, `upstream` the one upstream it may reach, an optional
   * narrowing `scope`, `cnf.jkt` when the exchange carried a DPoP proof; `ttl` seconds. No refresh
   * token ever descends from it.
   */
  signDelegated (subject: AccessClaims,
    delegation: { clientId: string, upstream: string, scope?: string | undefined, jkt?: string | undefined },
    ttl: number): Promise<IssuedToken> {
    return this.#sign({
      sub: subject.sub,
      user_id: subject.sub,
      sid: subject.sid,
      token_type: 'access',
      username: subject.username,
      roles: subject.roles,
      ...(subject.amr !== undefined ? { amr: subject.amr } : {}),
      ...(subject.auth_time !== undefined ? { auth_time: subject.auth_time } : {}),
      act: { sub: `client:${delegation.clientId}` },
      upstream: delegation.upstream,
      ...(delegation.scope !== undefined ? { scope: delegation.scope } : {}),
      ...bindingClaims({ jkt: delegation.jkt })
    }, this.#opts.audience, ttl)
  }

  /** Refresh tokens are addressed to the gateway itself (aud = issuer), never to the API audience. */
  signRefresh (userId: string, sessionId: string, binding?: TokenBinding, auth?: AuthContext): Promise<IssuedToken> {
    return this.#sign({ ...authClaims(auth), sub: userId, sid: sessionId, token_type: 'refresh', ...bindingClaims(binding) },
      this.#opts.issuer,
      this.#opts.refreshTtl)
  }

  /**
   * A token introspection answer as a JWT (RFC 9701): `typ` token-introspection+jwt, `iss` the
   * gateway, `aud` the introspecting client, the answer in `token_introspection`.
   */
  signIntrospection (clientId: string, introspection: Record<string, unknown>): Promise<string> {
    return new SignJWT({ token_introspection: introspection, jti: newId() })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: this.#keys.signing.kid, typ: 'token-introspection+jwt' })
      .setIssuer(this.#opts.issuer)
      .setAudience(clientId)
      .setIssuedAt(nowSeconds())
      .sign(this.#keys.signing.privateKey)
  }

  /** The identity assertion an upstream receives in `X-Gateway-Assertion` (at most 60 s). */
  async signAssertion (audience: string, subject: string, claims: Record<string, unknown>, ttl = 60): Promise<string> {
    const issued = await this.#sign({ ...claims, sub: subject }, audience, Math.min(ttl, 60))
    return issued.token
  }

  /**
   * Verifies an identity assertion the gateway sent to one of `upstreams` for a user's request
   * (signature, iss, aud, at most 60 s old, a session id), as the subject of a token exchange by
   * that upstream. Assertions of machine clients or of delegated requests are refused.
   * @throws GatewayError `token_expired` or `token_invalid`
   */
  async verifyUserAssertion (token: string, upstreams: readonly string[]): Promise<AccessClaims> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) throw gatewayError('token_invalid',
      'malformed token')
    let payload: Record<string, unknown>
    try {
      const result = await jwtVerify(token, (header: JWTHeaderParameters) => {
        const key = this.#keys.publicKey(header.kid)
        if (key === undefined) throw new joseErrors.JWKSNoMatchingKey()
        return key
      }, { algorithms: [SIGNING_ALG], issuer: this.#opts.issuer, audience: [...upstreams],
        requiredClaims: ['exp', 'iat', 'sub', 'jti', 'sid'], maxTokenAge: 60 })
      payload = result.payload
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw gatewayError('token_expired')
      throw gatewayError('token_invalid')
    }
    // An access token is no assertion (it has a token_type), nor is a client's or a delegated one's.
    if ('token_type' in payload || 'client_id' in payload || 'act' in payload) throw gatewayError('token_invalid', 'not a user assertion')
    const claims = { ...payload, token_type: 'access' as const }
    if (!claimsCheckers.access.Check(claims)) throw gatewayError('token_invalid', 'unexpected claims')
    return claims
  }

  /**
   * Verifies a user's token: signature, claims and that it is of the expected type. A machine
   * client's access token is refused here (see verifyAccess).
   * Does not look at the session: callers must check it (see SessionStore).
   * @throws GatewayError `token_expired` or `token_invalid`
   */
  async verify<T extends TokenType> (token: string, expected: T): Promise<ClaimsOf<T>> {
    const claims = await this.#verified(token, expected)
    if (isClientClaims(claims)) throw gatewayError('token_invalid', 'not a user token')
    return claims as ClaimsOf<T>
  }

  /**
   * Verifies an access token of a user or of a machine client. Does not look at the session or
   * the client record: callers must check them.
   * @throws GatewayError `token_expired` or `token_invalid`
   */
  verifyAccess (token: string): Promise<AccessClaims | ClientAccessClaims> {
    return this.#verified(token, 'access') as Promise<AccessClaims | ClientAccessClaims>
  }

  /**
   * The claims of an access token that verifyAccess accepted before and the cache still holds
   * (unexpired), at once and without a promise; undefined otherwise (then verifyAccess decides).
   */
  cachedAccess (token: string): AccessClaims | ClientAccessClaims | undefined {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return undefined
    const cached = this.#cache.get(cacheKey(token), nowSeconds())
    return cached === undefined || cached.token_type !== 'access' ? undefined : cached
  }

  async #verified (token: string, expected: TokenType): Promise<AccessClaims | RefreshClaims | ClientAccessClaims> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw gatewayError('token_invalid', 'malformed token')
    const now = nowSeconds()
    const key = cacheKey(token)
    const cached = this.#cache.get(key, now)
    if (cached !== undefined) {
      if (cached.token_type !== expected) throw gatewayError('token_invalid', `not an ${expected} token`)
      return cached
    }
    if (!COMPACT_JWS.test(token)) throw gatewayError('token_invalid', 'malformed token')
    let payload: unknown
    try {
      const result = await jwtVerify(token, (header: JWTHeaderParameters) => {
        const key = this.#keys.publicKey(header.kid)
        if (key === undefined) throw new joseErrors.JWKSNoMatchingKey()
        return key
      }, {
        algorithms: [SIGNING_ALG],
        issuer: this.#opts.issuer,
        audience: expected === 'access' ? this.#opts.audience : this.#opts.issuer,
        // `sid` too for user tokens: their schemas below require it (client tokens have none).
        requiredClaims: ['exp', 'iat', 'sub', 'jti', 'token_type']
      })
      payload = result.payload
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw gatewayError('token_expired')
      throw gatewayError('token_invalid')
    }
    const verified = checkedClaims(payload, expected, now)
    this.#cache.set(key, verified)
    return verified
  }
}
