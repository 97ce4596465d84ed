/**
 * A bounded LRU of entries that carry their own expiry (`exp`, in seconds): an expired entry is
 * never returned. It holds the verified-token cache (keyed by the token's SHA-256; it never
 * replaces the session check in Redis) and the upstream assertion cache.
 */
export class ExpiringLru<T extends { exp: number }> {
  readonly #entries = new Map<string, T>()
  /**
   * The key set or used last, which is the Map's last entry while it is there: used again, it
   * stays put (moving it would shrink and grow a small Map's table, garbage on every hit).
   */
  #newest: string | undefined

  constructor (readonly maxEntries: number) {}

  get (key: string, nowSeconds: number): T | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.exp <= nowSeconds) {
      this.#entries.delete(key)
      return undefined
    }
    if (key !== this.#newest) {
      // most recently used goes last
      this.#entries.delete(key)
      this.#entries.set(key, entry)
      this.#newest = key
    }
    return entry
  }

  set (key: string, entry: T): void {
    if (this.maxEntries === 0) return
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    this.#newest = key
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
  }

  get size (): number {
    return this.#entries.size
  }
}
