/** The rate-limit answer headers of docs/abuse-protection.md, for limits counted outside @fastify/rate-limit. */
import type { FastifyReply } from 'fastify'
import { gatewayError, type GatewayError } from '../errors.js'

/** Every limit of docs/abuse-protection.md counts per minute. */
export const LIMIT_WINDOW_MS = 60_000

export interface WindowCount {
  limit: number
  count: number
  /** Milliseconds until the window resets. */
  ttlMs: number
}

/** Sets x-ratelimit-* and returns the 429 to throw when the limit is exceeded, else null. */
export function applyWindowCount (reply: FastifyReply, w: WindowCount): GatewayError | null {
  const resetSeconds = Math.max(0, Math.ceil(w.ttlMs / 1000))
  reply.header('x-ratelimit-limit', w.limit)
  reply.header('x-ratelimit-remaining', Math.max(0, w.limit - w.count))
  reply.header('x-ratelimit-reset', resetSeconds)
  if (w.count <= w.limit) return null
  return gatewayError('rate_limited', `retry in ${resetSeconds} seconds`, { 'retry-after': String(resetSeconds) })
}
