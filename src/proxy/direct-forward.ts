/**
 * The direct proxy path: a GET without a body (most proxied traffic) goes to the upstream through
 * undici's dispatch API on the upstream's pool, and its answer goes back through Fastify's reply.
 * @fastify/reply-from, the path of every other request, hands each answer over as a stream; this
 * path costs less CPU per request (BENCHMARKS.md, "Direct path"; PROXY_DIRECT_GET=false turns it
 * off, docs/proxy-paths.md). Here an answer with a Content-Length of at most DIRECT_BUFFER_LIMIT
 * and a Content-Type is collected and sent as one buffer; any other is streamed, with backpressure.
 *
 * It shares with the reply-from path the deadline (upstream-deadline.ts), the headers both ways
 * and the error handler (the caller's functions, upstream-errors.ts), no retry, and an upstream
 * request aborted (or never sent, when still queued) once the client is gone;
 * test/e2e/proxy-path-parity.test.ts checks that both give the same answers.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { PassThrough } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { AnyReply, AnyRequest } from '../lib/request-types.js'
import { startDeadline } from './upstream-deadline.js'
import type { DeadlinePool } from './upstream-pool.js'

/** The largest answer collected into one buffer (larger ones are streamed). */
export const DIRECT_BUFFER_LIMIT = 64 * 1024

/** A GET that carries no body: the requests the direct path takes. */
export function isDirectRequest (request: AnyRequest): boolean {
  return request.method === 'GET' && request.headers['content-length'] === undefined && request.headers['transfer-encoding'] === undefined
}

export interface DirectForward {
  pool: DeadlinePool
  /** The upstream's timeout (its pool may be shared with upstreams of other timeouts). */
  timeoutMs: number
  /** The headers the upstream receives. */
  requestHeaders: (request: AnyRequest) => IncomingHttpHeaders
  /** The upstream answer's headers as the client receives them. */
  responseHeaders: (headers: IncomingHttpHeaders) => OutgoingHttpHeaders
  /** Answers the client when the upstream failed before its answer started. */
  onError: (reply: AnyReply, failure: { error: Error }) => void
}

class ClientGoneError extends Error {
  override name = 'ClientGoneError'
  constructor () { super('the client closed the connection') }
}

/** The head of an answer not yet started (never changed: a started answer gets its own object). */
const NO_HEADERS: OutgoingHttpHeaders = {}

/**
 * One request on the direct path: undici's dispatch handler and the state both sides share. A
 * class rather than a handler literal with closures: this runs on every proxied GET, and one object
 * per request is less garbage than a closure per callback.
 */
class DirectExchange implements Dispatcher.DispatchHandler {
  readonly #reply: AnyReply
  readonly #opts: DirectForward
  #controller: Dispatcher.DispatchController | null = null
  /** The client has its answer (or its error): nothing else may be sent. */
  #answered = false
  /** undici is done with this request (answer complete or failed). */
  #upstreamDone = false
  #stream: PassThrough | null = null
  #status = 0
  #headers: OutgoingHttpHeaders = NO_HEADERS
  /** The body collected so far (most answers come in one chunk). */
  #first: Buffer | null = null
  #more: Buffer[] | null = null
  readonly #deadline: NodeJS.Timeout

  constructor (reply: AnyReply, opts: DirectForward) {
    this.#reply = reply
    this.#opts = opts
    this.#deadline = startDeadline(opts.timeoutMs, (error) => {
      this.#controller?.abort(error)
      this.#fail(error)
    })
    // 'close' comes once per response: `on` spares the wrapper `once` makes per request.
    reply.raw.on('close', () => {
      if (this.#upstreamDone) return
      this.#answered = true
      clearTimeout(this.#deadline)
      this.#controller?.abort(new ClientGoneError())
    })
  }

  /** Sends the answer's head with `body`; false when the upstream's status is not one Fastify sends (then 502). */
  #answer (body: Buffer | PassThrough | undefined): boolean {
    this.#answered = true
    try {
      this.#reply.code(this.#status)
    } catch {
      this.#answered = false
      this.#fail(new Error(`the upstream answered with status ${this.#status}`))
      return false
    }
    // One by one: `reply.headers` would make an array of the names per request.
    const headers = this.#headers
    for (const name in headers) this.#reply.header(name, headers[name])
    this.#reply.send(body)
    return true
  }

  #fail (error: Error): void {
    clearTimeout(this.#deadline)
    if (this.#answered) return
    this.#answered = true
    this.#opts.onError(this.#reply, { error })
  }

  // undici takes a handler for its controller API only when it has onRequestStart.
  onRequestStart (c: Dispatcher.DispatchController): void {
    this.#controller = c
    if (this.#answered) c.abort(new ClientGoneError())
  }

  onResponseStart (c: Dispatcher.DispatchController, statusCode: number, upstreamHeaders: IncomingHttpHeaders): void {
    // An interim answer (100, 102, 103 Early Hints) is dropped: the client gets the final one,
    // and the deadline still runs for it.
    if (statusCode < 200) return
    clearTimeout(this.#deadline)
    if (this.#answered) return
    this.#status = statusCode
    this.#headers = this.#opts.responseHeaders(upstreamHeaders)
    const length = Number(upstreamHeaders['content-length'])
    // Fastify would label a buffer without a Content-Type as application/octet-stream.
    if (length <= DIRECT_BUFFER_LIMIT && (length === 0 || upstreamHeaders['content-type'] !== undefined)) return
    const body = new PassThrough()
    if (!this.#answer(body)) {
      c.abort(new Error('unusable upstream status'))
      return
    }
    this.#stream = body
    body.on('drain', () => c.resume())
  }

  onResponseData (c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#stream !== null) {
      if (!this.#stream.write(chunk)) c.pause()
    } else if (this.#first === null) {
      this.#first = chunk
    } else {
      (this.#more ??= [this.#first]).push(chunk)
    }
  }

  onResponseEnd (): void {
    this.#upstreamDone = true
    if (this.#stream !== null) {
      this.#stream.end()
      return
    }
    if (!this.#answered) this.#answer(this.#more !== null ? Buffer.concat(this.#more) : this.#first ?? undefined)
  }

  onResponseError (_c: Dispatcher.DispatchController, error: Error): void {
    this.#upstreamDone = true
    if (this.#stream !== null) this.#stream.destroy(error)
    else this.#fail(error)
  }
}

/** Forwards `request` to `path` (with its query) on the upstream and answers through `reply`. */
export function forwardDirect (request: AnyRequest, reply: AnyReply, path: string, opts: DirectForward): void {
  const exchange = new DirectExchange(reply, opts)
  // An event stream may stay quiet longer than the timeout: the timeout bounds only the wait for
  // its head (docs/live-connections.md), and its session bounds its life.
  const bodyTimeout = request.headers.accept?.includes('text/event-stream') === true ? 0 : opts.timeoutMs
  opts.pool.dispatch({ path, method: 'GET', headers: opts.requestHeaders(request), headersTimeout: opts.timeoutMs,
    bodyTimeout }, exchange)
}
