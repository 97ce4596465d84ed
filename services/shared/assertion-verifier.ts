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
 * An assertion the gateway made for forward authentication (another proxy forwards the request)
 * also names the original `method` and `path` (normalized, without query): pass the request as
 * `verify(assertion, { method, url })` and an assertion taken from one request is refused on any
 * other method or path. Without the request, such a bound assertion is refused outright.
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

/** The request an assertion arrived with: its method and its URL as received (path and query). */
export interface ReceivedRequest {
  method: string
  url: string
}

// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const REFUSED_RAW = /%2f|%5c|%25|%00|\\|;|[\x00-\x20\x7f]/i

/**
 * The path as the gateway normalizes it before deciding (percent-decoding, dot segments, empty
 * segments), so the upstream compares like with like whatever encoding the proxy forwarded; null
 * for a path the gateway would refuse.
 */
export function normalizedPath (url: string): string | null {
  const raw = url.split('?')[0] ?? url
  if (!raw.startsWith('/') || REFUSED_RAW.test(raw)) return null
  let decoded: string
  try {
    decoded = decodeURIComponent(raw)
  } catch {
    return null
  }
  const segments: string[] = []
  for (const segment of decoded.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (segments.length === 0) return null
      segments.pop()
      continue
    }
    segments.push(segment)
  }
  return '/' + segments.map(encodeURIComponent).join('/')
}

/** Throws unless a bound assertion (`method` / `path` claims) names this very request. */
export function checkBinding (payload: JWTPayload, request: ReceivedRequest | undefined): void {
  const method = payload.method
  const path = payload.path
  if (method === undefined && path === undefined) return
  if (request === undefined) throw new Error('assertion bound to a request, but no request to compare')
  if (method !== undefined && method !== request.method) throw new Error('assertion made for another method')
  if (path !== undefined && (typeof path !== 'string' || path !== normalizedPath(request.url))) throw new Error(
    'assertion made for another path')
}

export class AssertionVerifier {
  readonly #opts: AssertionVerifierOptions
  readonly #maxEntries: number
  /** Insertion order is eviction order: the oldest verified assertion goes first. */
  readonly #cache = new Map<string, { payload: Verified, until: number }>()

  constructor (opts: AssertionVerifierOptions) {
    this.#opts = opts
    this.#maxEntries = opts.maxEntries ?? 10_000
  }

  /**
   * The assertion's claims; throws when it is not a valid assertion of the gateway for this
   * service, or when it is bound to another request than `request` (see above).
   */
  async verify (assertion: string, request?: ReceivedRequest): Promise<Verified> {
    const payload = await this.#verified(assertion)
    checkBinding(payload, request)
    return payload
  }

  async #verified (assertion: string): Promise<Verified> {
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
