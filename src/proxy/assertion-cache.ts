/**
 * Identity assertions for upstreams are signed once per (upstream, access token) and reused while
 * they have more than half their lifetime left, so the hot path rarely pays for an ECDSA signature.
 * Bounded LRU; an entry is only ever served after the gateway has checked the token's session.
 */
import { ExpiringLru } from '../lib/expiring-lru.js'

export const ASSERTION_TTL_SECONDS = 60

/**
 * A flat copy of a string. A string built by concatenation, as a signed JWT is, is a tree of its
 * pieces in V8: for an assertion about 300 bytes more than its characters. A string kept for long
 * is worth one copy (JSON round trip: exact for every string).
 */
export function flat (s: string): string {
  return JSON.parse(JSON.stringify(s)) as string
}
const MIN_REMAINING_SECONDS = ASSERTION_TTL_SECONDS / 2

export class AssertionCache {
  /** `exp` here is the end of reuse: half the assertion's lifetime after it was signed. */
  readonly #entries: ExpiringLru<{ token: string, exp: number }>

  constructor (maxEntries = 10_000) {
    this.#entries = new ExpiringLru(maxEntries)
  }

  /** The cached assertion of `key`, if it is still to be reused. */
  peek (key: string, nowSeconds: number): string | undefined {
    return this.#entries.get(key, nowSeconds)?.token
  }

  async get (key: string, nowSeconds: number, sign: () => Promise<string>): Promise<string> {
    const hit = this.#entries.get(key, nowSeconds)
    if (hit !== undefined) return hit.token
    const token = await sign()
    this.#entries.set(key, { token: flat(token), exp: nowSeconds + ASSERTION_TTL_SECONDS - MIN_REMAINING_SECONDS })
    return token
  }
}
