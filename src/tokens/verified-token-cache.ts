/**
 * A bounded LRU of tokens whose signature and claims were verified, keyed by the whole token string.
 * It saves the ECDSA verification on the hot path; it never replaces the session check in Redis.
 */
export class VerifiedTokenCache<T extends { exp: number }> {
  readonly #entries = new Map<string, T>()

  constructor (readonly maxEntries: number) {}

  get (token: string, nowSeconds: number): T | undefined {
    const claims = this.#entries.get(token)
    if (claims === undefined) return undefined
    this.#entries.delete(token)
    if (claims.exp <= nowSeconds) return undefined
    this.#entries.set(token, claims) // most recently used goes last
    return claims
  }

  set (token: string, claims: T): void {
    if (this.maxEntries === 0) return
    this.#entries.delete(token)
    this.#entries.set(token, claims)
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
  }

  get size (): number {
    return this.#entries.size
  }
}
