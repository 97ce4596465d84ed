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

/** Forwards `request` to `path` (with its query) on the upstream and answers through `reply`. */
export function forwardDirect (request: AnyRequest, reply: AnyReply, path: string, opts: DirectForward): void {
  let controller: Dispatcher.DispatchController | null = null
  // The client has its answer (or its error): nothing else may be sent.
  let answered = false
  // undici is done with this request (answer complete or failed).
  let upstreamDone = false
  let stream: PassThrough | null = null
  let status = 0
  let headers: OutgoingHttpHeaders = {}
  const chunks: Buffer[] = []

  /** Sends the answer's head with `body`; false when the upstream's status is not one Fastify sends (then 502). */
  const answer = (body: Buffer | PassThrough | undefined): boolean => {
    answered = true
    try {
      reply.code(status)
    } catch {
      answered = false
      fail(new Error(`the upstream answered with status ${status}`))
      return false
    }
    reply.headers(headers).send(body)
    return true
  }
  const fail = (error: Error): void => {
    clearTimeout(deadline)
    if (answered) return
    answered = true
    opts.onError(reply, { error })
  }
  const deadline = startDeadline(opts.timeoutMs, (error) => {
    controller?.abort(error)
    fail(error)
  })
  reply.raw.once('close', () => {
    if (upstreamDone) return
    answered = true
    clearTimeout(deadline)
    controller?.abort(new ClientGoneError())
  })

  const handler: Dispatcher.DispatchHandler = {
    // undici takes a handler for its controller API only when it has onRequestStart.
    onRequestStart (c) {
      controller = c
      if (answered) c.abort(new ClientGoneError())
    },
    onResponseStart (c, statusCode, upstreamHeaders) {
      // An interim answer (100, 102, 103 Early Hints) is dropped: the client gets the final one,
      // and the deadline still runs for it.
      if (statusCode < 200) return
      clearTimeout(deadline)
      if (answered) return
      status = statusCode
      headers = opts.responseHeaders(upstreamHeaders)
      const length = Number(upstreamHeaders['content-length'])
      // Fastify would label a buffer without a Content-Type as application/octet-stream.
      if (length <= DIRECT_BUFFER_LIMIT && (length === 0 || upstreamHeaders['content-type'] !== undefined)) return
      const body = new PassThrough()
      if (!answer(body)) {
        c.abort(new Error('unusable upstream status'))
        return
      }
      stream = body
      body.on('drain', () => c.resume())
    },
    onResponseData (c, chunk) {
      if (stream === null) chunks.push(chunk)
      else if (!stream.write(chunk)) c.pause()
    },
    onResponseEnd () {
      upstreamDone = true
      if (stream !== null) {
        stream.end()
        return
      }
      if (!answered) answer(chunks.length === 0 ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
    },
    onResponseError (_c, error) {
      upstreamDone = true
      if (stream !== null) stream.destroy(error)
      else fail(error)
    }
  }
  // An event stream may stay quiet longer than the timeout: the timeout bounds only the wait for
  // its head (docs/live-connections.md), and its session bounds its life.
  const bodyTimeout = request.headers.accept?.includes('text/event-stream') === true ? 0 : opts.timeoutMs
  opts.pool.dispatch({ path, method: 'GET', headers: opts.requestHeaders(request), headersTimeout: opts.timeoutMs,
    bodyTimeout }, handler)
}
