/**
 * Refused tokens count per client IP on every route that checks a presented token (docs/abuse-protection.md), as
 * failed authentications on proxied routes do: against `PUBLIC_IP_LIMIT`, so guessing tokens at
 * /auth/sessions, /auth/refresh or logout is as slow as guessing them at the proxy. Past the limit
 * the answer is 429 `rate_limited` instead of the 401.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.js'

type Check = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>

export interface TokenFailureLimit {
  /** Counts `err` when it refuses a token (401), then rethrows it (or the 429 past the limit). */
  count: (request: FastifyRequest, reply: FastifyReply, err: unknown) => Promise<never>
  /** A preHandler that runs `check` and counts its refusals. */
  guarded: (check: Check) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
}

export function tokenFailureLimit (fastify: FastifyInstance): TokenFailureLimit {
  const limit = fastify.ipLimitHook('public', fastify.config.limits.publicPerIp)
  const count = async (request: FastifyRequest, reply: FastifyReply, err: unknown): Promise<never> => {
    if (err instanceof GatewayError && err.statusCode === 401) await limit(request, reply)
    throw err
  }
  return {
    count,
    guarded: (check) => async (request, reply) => {
      try {
        await check(request, reply)
      } catch (err) {
        await count(request, reply, err)
      }
    }
  }
}
