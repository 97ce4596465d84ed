/**
 * Identity assertions for upstreams are signed once per (upstream, access token) and reused while
 * they have more than half their lifetime left, so the hot path rarely pays for an ECDSA signature.
 * Bounded LRU; an entry is only ever served after the gateway has checked the token's session.
 */
export const ASSERTION_TTL_SECONDS = 60
const MIN_REMAINING_SECONDS = ASSERTION_TTL_SECONDS / 2

export class AssertionCache {
  readonly #entries = new Map<string, { token: string, exp: number }>()

  constructor (readonly maxEntries = 10_000) {}

  async get (key: string, nowSeconds: number, sign: () => Promise<string>): Promise<string> {
    const hit = this.#entries.get(key)
    if (hit !== undefined && hit.exp - nowSeconds > MIN_REMAINING_SECONDS) return hit.token
    const token = await sign()
    this.#entries.delete(key)
    this.#entries.set(key, { token, exp: nowSeconds + ASSERTION_TTL_SECONDS })
    if (this.#entries.size > this.maxEntries) this.#entries.delete(this.#entries.keys().next().value as string)
    return token
  }
}
