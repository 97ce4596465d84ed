/**
 * fast-jwt (the verifier under @fastify/jwt) configured like the gateway's jose path, for the
 * comparison of issue 13: bench/jwt-verify-bench.ts measures it, test/unit/fast-jwt-strictness.test.ts
 * runs the attack suite against it. It is not used by the gateway (see BENCHMARKS.md, Notes).
 *
 * Two ways of finding the key by `kid` in the gateway's key ring:
 *   key-callback  fast-jwt's `key` callback: one verifier; its cache is looked up before the callback
 *   plugin        what @fastify/jwt does with a `secret` function: decode the token, pick the key by
 *                 `header.kid`, then a verifier with that static key (one per key, kept in a Map,
 *                 like the plugin's validatorCache); each verifier has its own cache
 * Same requirements as src/tokens/token-service.ts: ES256 only, iss, aud, required exp, iat, sub,
 * jti, token_type, no clock tolerance. `verify` adds the checks token-service.ts does after jose
 * (token type, claim schemas, iat not in the future), so that it answers with the same codes.
 */
import { KeyObject } from 'node:crypto'
import { createDecoder, createVerifier, TokenError, type Algorithm } from 'fast-jwt'
import { gatewayError } from '../src/errors.js'
import type { AccessClaims, ClientAccessClaims, RefreshClaims, TokenType } from '../src/tokens/claims.js'
import { SIGNING_ALG, type KeyRing } from '../src/tokens/key-ring.js'
import { checkedClaims, nowSeconds } from '../src/tokens/token-service.js'

export type FastJwtMode = 'key-callback' | 'plugin'

/** jose requires iss and aud when `issuer`/`audience` are set; fast-jwt checks them only when present. */
export const REQUIRED_CLAIMS: readonly string[] = ['exp', 'iat', 'sub', 'jti', 'token_type', 'iss', 'aud']
const MAX_TOKEN_LENGTH = 8192

export interface FastJwtVerifierOptions {
  issuer: string
  audience: string
  mode: FastJwtMode
  /** fast-jwt's verified-token cache (entries); 0 turns it off. */
  cacheSize: number
  /** Default REQUIRED_CLAIMS. */
  requiredClaims?: readonly string[]
}

type Verify = (token: string) => Promise<unknown>

/** The public keys of a ring as SPKI PEM by kid (fast-jwt takes keys as strings or Buffers only). */
export function pemsByKid (keys: KeyRing): Map<string, string> {
  const pems = new Map<string, string>()
  for (const { kid } of keys.publicJwks.keys) {
    const key = keys.publicKey(kid)
    if (key !== undefined) pems.set(kid, KeyObject.from(key as Parameters<typeof KeyObject.from>[0]).export(
      { type: 'spki', format: 'pem' }) as string)
  }
  return pems
}

export class FastJwtTokenVerifier {
  readonly #opts: FastJwtVerifierOptions
  /** kid → PEM; `removeKid` takes a key out, as a new key file on restart would. */
  readonly #pems: Map<string, string>
  readonly #verifiers: Record<TokenType, Verify>

  constructor (keys: KeyRing, opts: FastJwtVerifierOptions) {
    this.#opts = opts
    this.#pems = pemsByKid(keys)
    this.#verifiers = { access: this.#build(opts.audience), refresh: this.#build(opts.issuer) }
  }

  #pem (kid: unknown): string | undefined {
    return typeof kid === 'string' ? this.#pems.get(kid) : undefined
  }

  #build (audience: string): Verify {
    const options = {
      algorithms: [SIGNING_ALG] as Algorithm[],
      allowedIss: this.#opts.issuer,
      allowedAud: audience,
      requiredClaims: [...(this.#opts.requiredClaims ?? REQUIRED_CLAIMS)],
      clockTolerance: 0,
      cache: this.#opts.cacheSize > 0 ? this.#opts.cacheSize : false
    }
    if (this.#opts.mode === 'key-callback') {
      const verifier = createVerifier({
        ...options,
        key: (decoded: { header: Record<string, unknown> }, cb: (err: Error | null, key: string) => void): void => {
          const pem = this.#pem(decoded.header.kid)
          if (pem === undefined) cb(new TokenError(TokenError.codes.keyFetchingError, 'unknown kid'), '')
          else cb(null, pem)
        }
      })
      return (token) => verifier(token)
    }
    const decode = createDecoder({ complete: true })
    const byPem = new Map<string, (token: string) => unknown>()
    return async (token) => {
      const decoded = decode(token) as { header: Record<string, unknown> }
      const pem = this.#pem(decoded.header.kid)
      if (pem === undefined) throw new TokenError(TokenError.codes.keyFetchingError, 'unknown kid')
      let verifier = byPem.get(pem)
      if (verifier === undefined) {
        verifier = createVerifier({ ...options, key: pem })
        byPem.set(pem, verifier)
      }
      return verifier(token)
    }
  }

  /** Takes a key out of the ring (for the rotation test). */
  removeKid (kid: string): void {
    this.#pems.delete(kid)
  }

  /** fast-jwt alone: its verdict and payload, or its TokenError. */
  raw (token: string, expected: TokenType = 'access'): Promise<unknown> {
    return this.#verifiers[expected](token)
  }

  /** fast-jwt and then the checks token-service.ts makes after jose; throws GatewayErrors like TokenService. */
  async verify (token: string, expected: TokenType): Promise<AccessClaims | RefreshClaims | ClientAccessClaims> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw gatewayError('token_invalid', 'malformed token')
    let payload: unknown
    try {
      payload = await this.#verifiers[expected](token)
    } catch (err) {
      if (err instanceof TokenError && err.code === TokenError.codes.expired) throw gatewayError('token_expired')
      throw gatewayError('token_invalid')
    }
    return checkedClaims(payload, expected, nowSeconds())
  }

  verifyAccess (token: string): Promise<AccessClaims | RefreshClaims | ClientAccessClaims> {
    return this.verify(token, 'access')
  }
}
