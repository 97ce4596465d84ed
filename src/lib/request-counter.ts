/**
 * A per-window request counter as the session check uses it; src/limits/batched-window-counter.ts
 * implements it (counted locally, sent in batches). Here so that sessions/ and limits/ do not import
 * each other.
 */

/** A counter's state after a hit: the hits of the window so far, and the ms until it ends. */
export interface WindowView { count: number, ttlMs: number }

export interface RequestCounter {
  /** Counts one request on `key` against `limit` per window. */
  hit: (key: string, limit: number) => Promise<WindowView>
}
