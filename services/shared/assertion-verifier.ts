/**
 * Verifies the gateway's `X-Gateway-Assertion` for an upstream service, once per distinct assertion.
 *
 * The gateway reuses one assertion per access token for up to 30 s, so an upstream sees the same
 * string many times: it verifies the ES256 signature the first time and answers from a bounded
 * cache until the assertion expires. The cache is keyed by the whole signed string, so a hit is
 * exactly the assertion that was verified; an entry is never used past its `exp` (nor past
 * `iat` + 60 s). A key removed from the gateway's JWKS stops being accepted when the cached
 * assertions signed with it expire, at most 60 s later.
 *
 * Self-contained on purpose: an upstream author can copy this file (it needs only `jose`).
 */
import { jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'

export interface AssertionVerifierOptions {
  /** This service's name: the assertion's required `aud`. */
  audience: string
  /** The gateway's `JWT_ISSUER`. */
  issuer: string
  /** The gateway's public keys, e.g. jose's `createRemoteJWKSet(new URL(GATEWAY_JWKS_URL))`. */
  keys: JWTVerifyGetKey
  /** Verified assertions kept in memory (default 10,000; 0 verifies every time). */
  maxEntries?: number
}

/** The gateway mints assertions that live at most this long. */
export const MAX_ASSERTION_AGE_SECONDS = 60

type Verified = JWTPayload & { sub: string, exp: number, iat: number }

export class AssertionVerifier {
  readonly #opts: AssertionVerifierOptions
  readonly #maxEntries: number
  /** Insertion order is eviction order: the oldest verified assertion goes first. */
  readonly #cache = new Map<string, { payload: Verified, until: number }>()

  constructor (opts: AssertionVerifierOptions) {
    this.#opts = opts
    this.#maxEntries = opts.maxEntries ?? 10_000
  }

  /** The assertion's claims; throws when it is not a valid assertion of the gateway for this service. */
  async verify (assertion: string): Promise<Verified> {
    const now = Math.floor(Date.now() / 1000)
    const hit = this.#cache.get(assertion)
    if (hit !== undefined) {
      if (hit.until > now) return hit.payload
      this.#cache.delete(assertion)
    }
    const { payload } = await jwtVerify(assertion, this.#opts.keys, {
      algorithms: ['ES256'],
      audience: this.#opts.audience,
      issuer: this.#opts.issuer,
      requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      maxTokenAge: MAX_ASSERTION_AGE_SECONDS
    })
    if (typeof payload.sub !== 'string' || (payload.exp as number) - (payload.iat as number) > MAX_ASSERTION_AGE_SECONDS) {
      throw new Error('assertion lives too long')
    }
    const verified = payload as Verified
    if (this.#maxEntries > 0) {
      this.#cache.set(assertion, { payload: verified, until: Math.min(verified.exp, verified.iat + MAX_ASSERTION_AGE_SECONDS) })
      if (this.#cache.size > this.#maxEntries) this.#cache.delete(this.#cache.keys().next().value as string)
    }
    return verified
  }

  /** How many verified assertions are held (for tests and metrics). */
  get size (): number {
    return this.#cache.size
  }
}
