/**
 * The connection pool of one upstream, with the deadline of src/proxy/upstream-deadline.ts on
 * every request: a request queued behind a busy pool is answered (504) at the deadline wherever it
 * is, and a request aborted while queued never reaches the upstream.
 */
import { EventEmitter } from 'node:events'
import { Pool, type Dispatcher } from 'undici'
import { unescapeDottedSegments } from './dotted-segments.js'
import { startDeadline } from './upstream-deadline.js'

/**
 * The abort signal of one request. undici takes an EventEmitter with `aborted` and `reason` as a
 * signal (its documented alternative to AbortSignal); an AbortController per request cost far
 * more than the rest of this wrapper (an EventTarget, and garbage V8 collects slowly).
 */
class DeadlineSignal extends EventEmitter {
  aborted = false
  reason: Error | undefined = undefined
  abort (reason: Error): void {
    this.aborted = true
    this.reason = reason
    this.emit('abort')
  }
}

export type RequestOptions = Parameters<Pool['request']>[0]
export type Callback = (err: Error | null, data: Dispatcher.ResponseData<unknown> | undefined) => void

/**
 * What @fastify/reply-from needs of an undici instance: `request(options, callback)` (it never
 * uses the promise form); and `dispatch`, undici's handler API on the same connections, for the
 * direct path of src/proxy/direct-forward.ts.
 */
export type DeadlinePool = Pick<Pool, 'request' | 'dispatch' | 'close' | 'destroy'> & {
  readonly timeoutMs: number
  /** `request` in its callback form, as typed here (src/proxy/upstream-pools.ts routes to it). */
  readonly send: (options: RequestOptions, callback: Callback) => void
}

/**
 * `ca`: the certificates trusted for an https origin (UPSTREAM_CA_FILE) instead of Node's roots.
 * Certificates are always verified: the pool is made here rather than by @fastify/reply-from,
 * whose own undici instances turn verification off unless told otherwise.
 */
export function deadlinePool (origin: string, opts: { connections: number, timeoutMs: number, ca?: readonly string[] |
  undefined }): DeadlinePool {
  const pool = new Pool(origin, {
    connect: { rejectUnauthorized: true, ...(opts.ca !== undefined ? { ca: [...opts.ca] } : {}) },
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: 4_000,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs
  })
  const request = (options: RequestOptions, callback: Callback): void => {
    // Upstreams that share an origin share its pool, each with its own timeout (reply-from passes it).
    const timeoutMs = options.headersTimeout ?? opts.timeoutMs
    const signal = new DeadlineSignal()
    let settled = false
    const timer = startDeadline(timeoutMs, (err) => {
      signal.abort(err)
      if (!settled) {
        settled = true
        callback(err, undefined)
      }
    })
    pool.request({ ...options, path: unescapeDottedSegments(options.path), signal }, (err, data) => {
      clearTimeout(timer)
      if (settled) {
        // On an error undici passes `{ opaque }` without a body.
        ;(data?.body as { destroy?: () => void } | undefined)?.destroy?.()
        return
      }
      settled = true
      callback(err, data)
    })
  }
  // reply-from destroys its undici instance when Fastify closes.
  return {
    request: request as Pool['request'],
    send: request,
    dispatch: pool.dispatch.bind(pool),
    close: pool.close.bind(pool),
    destroy: pool.destroy.bind(pool),
    timeoutMs: opts.timeoutMs
  }
}
