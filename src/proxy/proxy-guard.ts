/**
 * Admission of a proxied request, in order: its route on the current table (matched on the
 * normalized path, src/proxy/normalize-path.ts), the decision of src/proxy/decide.ts (the same one
 * forward authentication takes: authentication, scopes or roles, limits, the per-user in-flight
 * cap), the users service's bookkeeping, the route's body limit, then the identity assertion.
 * A request that passes carries its compiled route (`request.proxyRoute`) to the forwarding step.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { pinClientIp } from '../lib/security-events.js'
import { handshakeOf } from '../live/ws-upgrade.js'
import { enforceBodyLimit } from './body-limit.js'
import type { CompiledRoute, LiveTable } from './compiled-routes.js'
import type { ProxyDecision } from './decide.js'
import { pathOf, wasRefusedPath } from './normalize-path.js'
import type { AssertRequest } from './proxy-assertion.js'
import type { UserChanges } from './user-changes.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The route a proxied request was admitted with (it keeps it across a reload). */
    proxyRoute: CompiledRoute | null
    /** The metrics label of a proxied request: its route's mount point, as `/mount` or `/mount/*`. */
    proxyMetricsLabel: string | null
  }
}

/** The metrics label of a normalized path on a table: its route's mount point, or `unmatched`. */
export function metricsLabel (live: LiveTable, path: string): string {
  const matched = live.table.match(path)
  const compiled = matched === undefined ? undefined : live.compiled.get(matched)
  return compiled === undefined ? 'unmatched' : path === compiled.mount ? compiled.mount : compiled.mountBelow
}

export interface GuardOptions {
  /** The table in use now (a reload swaps it; a request keeps the one it started with). */
  current: () => LiveTable
  decide: ProxyDecision
  changes: UserChanges
  assert: AssertRequest
}

/** The proxy route's preHandler: admits the request or throws the error the client gets. */
export function proxyGuard (opts: GuardOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async function guard (request, reply) {
    const live = opts.current()
    const path = pathOf(request.url)
    request.proxyMetricsLabel = metricsLabel(live, path)
    // A WebSocket handshake (src/live/ws-upgrade.ts): its ticket, Origin and route flag first; it
    // holds no upstream pool connection, and LIVE_CONNECTIONS_PER_USER bounds it instead.
    const handshake = handshakeOf(request) !== undefined
    if (handshake) await request.server.live.checkHandshake(request, live.table)
    const route = await opts.decide(request, reply, {
      table: live.table,
      method: request.method,
      path,
      unrouted: wasRefusedPath(request.raw) ? 'invalid_request' : 'not_found',
      holdsUpstream: !handshake
    })
    request.proxyRoute = live.compiled.get(route)!
    // The users service's answers may carry user changes, whose events are written after the
    // body was proxied: the client IP is taken while the socket is still there.
    if (route.upstream === 'users') pinClientIp(request)
    if (route.passwordCheck === true && request.auth !== null && request.client === null) await opts.changes.reserveAttempt(request)
    enforceBodyLimit(request, reply, request.proxyRoute.bodyLimit)
    const signing = opts.assert(request, route)
    if (signing !== undefined) await signing
  }
}
