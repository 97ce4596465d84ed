/**
 * Per-user cap on proxied requests in flight (UPSTREAM_USER_CONCURRENCY), so one user cannot
 * occupy an upstream's whole connection pool: past the cap the request is 429 `rate_limited`.
 * Counted in process, per replica (a request in flight lives on one replica; the Redis-backed
 * API_USER_LIMIT bounds the rate across replicas).
 */
export class ConcurrencyCap {
  readonly #inFlight = new Map<string, number>()
  constructor (readonly max: number) {}

  /** Takes a slot for `key`; false when `key` already holds `max`. */
  acquire (key: string): boolean {
    const n = this.#inFlight.get(key) ?? 0
    if (n >= this.max) return false
    this.#inFlight.set(key, n + 1)
    return true
  }

  release (key: string): void {
    const n = (this.#inFlight.get(key) ?? 1) - 1
    if (n <= 0) this.#inFlight.delete(key)
    else this.#inFlight.set(key, n)
  }

  inFlight (key: string): number {
    return this.#inFlight.get(key) ?? 0
  }
}
