/**
 * A route's `body_limit` on a proxied request: a declared Content-Length past it is refused before
 * anything is sent (413, connection closed); a chunked body, which declares no length, is counted
 * as it streams to the upstream and fails the upstream request past it (413 through
 * src/proxy/upstream-errors.ts).
 */
import { Transform, type TransformCallback } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { gatewayError } from '../errors.js'

/** Counts a streamed body and fails it past the limit. */
export class BodyLimit extends Transform {
  #seen = 0
  exceeded = false
  constructor (readonly limit: number) { super() }
  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.limit) {
      this.exceeded = true
      done(gatewayError('payload_too_large'))
      return
    }
    done(null, chunk)
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The byte counter of a chunked proxied body, when there is one. */
    proxiedBodyLimit: BodyLimit | null
  }
}

/** Applies `limit` to the request's body (the proxy's body is the raw stream, never parsed). */
export function enforceBodyLimit (request: FastifyRequest, reply: FastifyReply, limit: number): void {
  const length = Number(request.headers['content-length'] ?? 0)
  if (length > limit) {
    // The unread body would otherwise be drained on a kept-alive connection: close it instead.
    reply.header('connection', 'close')
    throw gatewayError('payload_too_large')
  }
  if (request.headers['transfer-encoding'] !== undefined && request.body !== undefined && request.body !== null) {
    const limiter = new BodyLimit(limit)
    ;(request.body as NodeJS.ReadableStream).pipe(limiter)
    request.proxiedBodyLimit = limiter
    request.body = limiter
  }
}
