/**
 * @fastify/rate-limit on the gateway's Redis (docs/abuse-protection.md), for the limits keyed by client
 * IP: login, verify, public routes and 404s. Counters live in Redis, so every replica shares them;
 * a Redis failure refuses the request (503) instead of running unlimited. The per-user limit of
 * proxied routes and the per-session refresh limit are counted inside the session scripts, in the
 * same round trip as the session check (src/sessions/scripts/).
 */
import fp from 'fastify-plugin'
import rateLimit, { type RateLimitPluginOptions, type RateLimitOptions } from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { gatewayError } from '../../errors.js'
import { clientBucket } from '../../limits/client-ip.js'
import { LIMIT_WINDOW_MS } from '../../limits/limit-headers.js'
import { redisRateLimitStore } from '../../limits/rate-limit-store.js'
import { securityEvent } from '../../lib/security-events.js'

export type IpLimitClass = 'login' | 'verify' | 'public'

declare module 'fastify' {
  interface FastifyInstance {
    /** Route options (`config.rateLimit`) of a per-IP limit class. */
    ipLimit: (limitClass: IpLimitClass, max: number) => RateLimitOptions
    /** The per-IP limit as a hook, for places without route options (404s, public proxy routes). */
    ipLimitHook: (limitClass: IpLimitClass, max: number) => (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>
  }
}

export default fp(async (fastify) => {
  await fastify.register(rateLimit, {
    global: false,
    store: redisRateLimitStore(fastify.redis),
    skipOnError: false,
    timeWindow: LIMIT_WINDOW_MS,
    addHeaders: { 'x-ratelimit-limit': true, 'x-ratelimit-remaining': true, 'x-ratelimit-reset': true, 'retry-after': true },
    addHeadersOnExceeding: { 'x-ratelimit-limit': true, 'x-ratelimit-remaining': true, 'x-ratelimit-reset': true },
    errorResponseBuilder: (_request, context) => gatewayError('rate_limited', `retry in ${context.after}`,
      { 'retry-after': String(Math.ceil(context.ttl / 1000)) }),
    onExceeded: (request, key) => securityEvent(request, 'rate_limited', { limit: key.split(':')[0] })
  } satisfies RateLimitPluginOptions)

  const ipLimit = (limitClass: IpLimitClass, max: number): RateLimitOptions => ({
    max,
    timeWindow: LIMIT_WINDOW_MS,
    keyGenerator: (request: FastifyRequest) => `${limitClass}:${clientBucket(request.ip)}`
  })
  fastify.decorate('ipLimit', ipLimit)
  fastify.decorate('ipLimitHook', (limitClass: IpLimitClass, max: number) => fastify.rateLimit(ipLimit(limitClass, max)))
}, { name: 'rate-limit', dependencies: ['config', 'redis-store'] })
