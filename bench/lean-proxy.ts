/**
 * A reference for the benchmark, not product code: the cheapest proxy path Fastify and undici
 * allow. The route hands the request to an undici Pool with a dispatch handler that writes the
 * upstream's head and body chunks straight to the client's response (no body stream, no
 * @fastify/reply-from). It forwards GET requests without a body, which is all the bench sends;
 * it exists to measure what @fastify/reply-from's streaming path costs on top of it.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Pool, type Dispatcher } from 'undici'
import { HOP_BY_HOP } from '../src/proxy/response-headers.js'

/** An undici dispatch handler that streams one upstream answer into `res`, with backpressure. */
function answerInto (res: ServerResponse): Dispatcher.DispatchHandler {
  return {
    // undici takes a handler for its controller API only when it has onRequestStart. A client
    // gone before the answer's end aborts the upstream request: otherwise a write refused by the
    // closed response pauses the upstream connection for good, and the pool runs dry.
    onRequestStart (controller) {
      res.once('close', () => { if (!res.writableFinished) controller.abort(new Error('the client closed the connection')) })
    },
    onResponseStart (controller, statusCode, headers) {
      for (const name of HOP_BY_HOP) delete headers[name]
      res.writeHead(statusCode, headers)
      res.on('drain', () => controller.resume())
    },
    onResponseData (controller, chunk) {
      if (!res.write(chunk)) controller.pause()
    },
    onResponseEnd () { res.end() },
    onResponseError () {
      if (!res.headersSent) res.writeHead(502, { 'content-length': '0' })
      res.end()
    }
  }
}

/**
 * Registers `GET prefix` and `GET prefix/*` on `app`, forwarded to `upstream` after `before`
 * (the per-request work under test, such as the gateway's session check).
 */
export function leanProxy (app: FastifyInstance, opts: { upstream: string, prefix: string,
  before: (request: FastifyRequest) => Promise<void> }): Pool {
  const pool = new Pool(opts.upstream, { connections: 128, pipelining: 1 })
  const handler = async (request: FastifyRequest, reply: { hijack: () => void, raw: ServerResponse }): Promise<void> => {
    await opts.before(request)
    reply.hijack()
    pool.dispatch({ path: request.url, method: 'GET', headers: { 'x-request-id': String(request.id) } }, answerInto(reply.raw))
  }
  app.get(opts.prefix, handler)
  app.get(`${opts.prefix}/*`, handler)
  app.addHook('onClose', async () => { await pool.close() })
  return pool
}
