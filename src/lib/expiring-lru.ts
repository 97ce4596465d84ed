/**
 * A bounded LRU of entries that carry their own expiry (`exp`, in seconds): an expired entry is
 * never returned. It holds the verified-token cache (keyed by the token's SHA-256; it never
 * replaces the session check in Redis) and the upstream assertion cache.
 */
export class ExpiringLru<T extends { exp: number }> {
  readonly #entries = new Map<string, T>()

  constructor (readonly maxEntries: number) {}

  get (key: string, nowSeconds: number): T | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    this.#entries.delete(key)
    if (entry.exp <= nowSeconds) return undefined
    this.#entries.set(key, entry) // most recently used goes last
    return entry
  }

  set (key: string, entry: T): void {
    if (this.maxEntries === 0) return
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
  }

  get size (): number {
    return this.#entries.size
  }
}
