import type { FastifyReply, FastifyRequest, RawServerBase, RouteGenericInterface } from 'fastify'

/**
 * A request or reply of any raw server type. @fastify/reply-from types its hooks this wide, so
 * code that the proxy's hooks call takes these (the default types are assignable to them).
 */
export type AnyRequest = FastifyRequest<RouteGenericInterface, RawServerBase>
export type AnyReply = FastifyReply<RouteGenericInterface, RawServerBase>
