/**
 * The deadline of one proxied request, shared by both proxy paths (src/proxy/upstream-pool.ts for
 * @fastify/reply-from, src/proxy/direct-forward.ts for direct GETs): it starts when the request is
 * handed to the upstream's pool and covers the whole wait for the answer's head, the wait for a
 * free connection included. undici's headersTimeout starts only once the request is written, and
 * undici notices an abort of a queued request only once it gets a connection (then never sends
 * it): the answer to the client cannot wait for that, so at the deadline the caller answers 504
 * `upstream_timeout` at once and aborts the upstream request wherever it is. Once the head has
 * arrived, undici's bodyTimeout (idle time between body chunks) takes over, so long downloads are
 * not cut.
 */

/** The code of an abort at the deadline (mapped to 504 `upstream_timeout`, src/proxy/upstream-errors.ts). */
export const DEADLINE_CODE = 'GW_UPSTREAM_DEADLINE'

export class DeadlineError extends Error {
  override name = 'DeadlineError'
  readonly code = DEADLINE_CODE
  constructor (ms: number) { super(`no upstream answer within ${ms} ms`) }
}

/**
 * Calls `expire` with a DeadlineError after `timeoutMs`, unless cleared first (clearTimeout on the
 * returned timer, once the answer's head or an error arrived).
 */
export function startDeadline (timeoutMs: number, expire: (error: DeadlineError) => void): NodeJS.Timeout {
  return setTimeout(() => { expire(new DeadlineError(timeoutMs)) }, timeoutMs)
}
