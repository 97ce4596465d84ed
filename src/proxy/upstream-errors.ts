/**
 * What the client is told when the upstream request failed before its answer started, on both
 * proxy paths (direct GETs and @fastify/reply-from call the same handler): 413 when the chunked
 * body went past the route's limit, 504 `upstream_timeout` for a deadline or undici timeout, else
 * 502 `upstream_unavailable`. Nothing is retried, and the client connection is closed.
 */
import type { FastifyInstance } from 'fastify'
import { gatewayError } from '../errors.js'
import type { AnyReply } from '../lib/request-types.js'
import { sendProblem } from '../lib/problem.js'
import type { UpstreamName } from './route-table.js'
import { DEADLINE_CODE } from './upstream-deadline.js'

/** Connection-level failures that mean the upstream is not there (502). */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED'
])
const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT',
  'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_TIMEOUT', 'FST_REPLY_FROM_HTTP_REQUEST_TIMEOUT', DEADLINE_CODE
])

export type UpstreamFailure = 'payload_too_large' | 'upstream_timeout' | 'upstream_unavailable'

/** Walks an error's cause chain for a code. */
function codesOf (err: unknown): string[] {
  const codes: string[] = []
  for (let e = err as { code?: unknown, cause?: unknown } | undefined, depth = 0;
    e !== undefined && e !== null && depth < 5;
    e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string') codes.push(e.code)
  }
  return codes
}

/** The error code for a failed upstream request; `codes` is its cause chain's codes. */
export function classifyUpstreamError (codes: readonly string[], bodyLimitExceeded: boolean): UpstreamFailure {
  if (bodyLimitExceeded) return 'payload_too_large'
  if (codes.some((c) => TIMEOUT_CODES.has(c))) return 'upstream_timeout'
  return 'upstream_unavailable'
}

export type UpstreamErrorHandler = (reply: AnyReply, failure: { error: Error }) => void

/** The error handler of one upstream (reply-from's `onError`, and the direct path's). */
export function upstreamErrorHandler (fastify: FastifyInstance, upstream: UpstreamName): UpstreamErrorHandler {
  return (reply, { error }) => {
    const request = reply.request
    const codes = codesOf(error)
    const code = classifyUpstreamError(codes, request.proxiedBodyLimit?.exceeded === true)
    if (code === 'upstream_unavailable' && !UNAVAILABLE_CODES.has(codes.at(-1) ?? '')) {
      request.log.warn({ upstream, codes }, 'unexpected upstream error')
    }
    request.log.warn({ upstream, code }, 'upstream request failed')
    fastify.metrics.upstreamErrors.inc({ upstream, code })
    // Answer without reusing the connection: the client's body may be half read.
    reply.header('connection', 'close')
    sendProblem(gatewayError(code), request, reply)
  }
}
