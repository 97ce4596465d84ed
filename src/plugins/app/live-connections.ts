/**
 * Live connections (docs/live-connections.md): WebSockets through the proxy, streamed answers, and
 * the end of both when their session ends.
 *
 * - Every proxied WebSocket (src/live/ws-proxy.ts) and every proxied `text/event-stream` answer is
 *   registered with its owner and route (src/live/live-registry.ts); LIVE_CONNECTIONS_PER_USER per
 *   user, client or (public routes) client IP on this replica, 429 past it.
 * - Revocations and state changes are told to every replica on one Redis Pub/Sub channel
 *   (src/live/live-channel.ts); the owner's connections are judged again at once
 *   (src/live/live-judge.ts). A sweep judges every connection every SWEEP_MS as a safety net, every
 *   DEGRADED_SWEEP_MS while the channel is lost, and at once when it is back; a route table swap
 *   is noticed within a second.
 * - On shutdown every WebSocket gets 1001 and every stream ends.
 * Nothing here runs per proxied request but an `onSend` check of the Content-Type.
 */
import { PassThrough, Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import { gatewayError } from '../../errors.js'
import { eventIp } from '../../lib/security-events.js'
import { splitUrl } from '../../proxy/normalize-path.js'
import type { ProxyRoute } from '../../proxy/route-table.js'
import type { RouteMatcher } from '../../proxy/decide.js'
import { openLiveChannel, type LiveNotice } from '../../live/live-channel.js'
import { judgeOwner, stillAllowed } from '../../live/live-judge.js'
import {
  clientKey,
  ipKey,
  LiveRegistry,
  userKey,
  type EndedBy,
  type EndReason,
  type LiveConnection,
  type LiveKind
} from '../../live/live-registry.js'
import { WebSocketRelay, type UpstreamTarget } from '../../live/ws-proxy.js'
import { TicketStore } from '../../live/ws-ticket.js'
import { checkHandshake, handshakeOf, listenForHandshakes } from '../../live/ws-upgrade.js'

/** The safety-net sweep while the channel is up, and while it is lost (within the 5 s promise). */
export const SWEEP_MS = 30_000
export const DEGRADED_SWEEP_MS = 3_000
/** Owners judged at once during a sweep. */
const SWEEP_BATCH = 50
/** How long shutdown waits for WebSockets to finish their close handshake. */
const SHUTDOWN_WAIT_MS = 2_000

export interface LiveConnections {
  registry: LiveRegistry
  tickets: TicketStore
  /** Is the live channel subscribed now? */
  channelUp: () => boolean
  /** Judges every open connection now; resolves when done (tests, and the channel's return). */
  sweep: () => Promise<void>
  /** A handshake's own checks before the proxy's decision (src/live/ws-upgrade.ts). */
  checkHandshake: (request: FastifyRequest, table: RouteMatcher) => Promise<void>
  /** Carries an admitted handshake on to the upstream (the proxy's handler). */
  forwardHandshake: (request: FastifyRequest, reply: FastifyReply, route: ProxyRoute, target: UpstreamTarget) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    live: LiveConnections
  }
}

/** The owner key and claims of an admitted request. */
function ownerOf (request: FastifyRequest): { key: string, owner: LiveConnection['owner'] } {
  if (request.client !== null) return { key: clientKey(request.client.client_id), owner: { user: null, client: request.client } }
  if (request.auth !== null) return { key: userKey(request.auth.sub), owner: { user: request.auth, client: null } }
  return { key: ipKey(request.ip), owner: { user: null, client: null } }
}

function isEventStream (contentType: unknown): boolean {
  return typeof contentType === 'string' && contentType.trimStart().toLowerCase().startsWith('text/event-stream')
}

export default fp(async (fastify) => {
  const config = fastify.config
  const registry = new LiveRegistry(config.liveConnectionsPerUser)
  const tickets = new TicketStore(fastify.redis)
  const relay = new WebSocketRelay(config.upstreamCa)
  const table = (): RouteMatcher => fastify.proxyRouteTable()

  new Gauge({
    name: 'gateway_live_connections',
    help: 'Live connections open on this replica (WebSockets and streamed answers), by kind',
    labelNames: ['kind'] as const,
    registers: [fastify.metrics.registry],
    collect () {
      this.set({ kind: 'websocket' }, registry.count('websocket'))
      this.set({ kind: 'stream' }, registry.count('stream'))
    }
  })
  const ended = new Counter({
    name: 'gateway_live_connections_ended_total',
    help: 'Live connections ended, by kind and reason (session_revoked, user_inactive, forbidden, shutting_down, message_too_large: ' +
      'ended by the gateway; closed: by the client or upstream)',
    labelNames: ['kind', 'reason'] as const,
    registers: [fastify.metrics.registry]
  })

  /** Counts a connection's end; the gateway's own ends are the event `live_connection_closed`. */
  function recordEnd (conn: LiveConnection, endedBy: EndedBy): void {
    ended.inc({ kind: conn.kind, reason: endedBy })
    if (endedBy === 'closed') return
    const fields = {
      ip: conn.ip,
      request_id: conn.requestId,
      kind: conn.kind,
      reason: endedBy,
      route: conn.route.path,
      ...(conn.owner.user !== null ? { user_id: conn.owner.user.sub } : {}),
      ...(conn.owner.client !== null ? { client_id: conn.owner.client.client_id } : {})
    }
    fastify.log.info({ event: 'live_connection_closed', ...fields }, 'live_connection_closed')
    fastify.metrics.securityEvents.inc({ event: 'live_connection_closed' })
    void fastify.audit.append('live_connection_closed', fields)
  }

  function endAll (conns: ReadonlyArray<[LiveConnection, EndReason]>): void {
    for (const [conn, reason] of conns) conn.end(reason)
  }

  async function judge (ownerKey: string): Promise<void> {
    const conns = registry.of(ownerKey)
    if (conns.length === 0) return
    try {
      endAll(await judgeOwner(conns, { sessions: fastify.sessions, clients: fastify.clients, table }))
    } catch (err) {
      // Redis cannot tell now: the connections stay; the sweep tries again.
      fastify.log.warn(
        { err: { message: (err as Error).message }, owner: ownerKey.slice(0, 2) },
        'live connections not judged: Redis did not answer'
      )
      throw err
    }
  }

  let sweeping: Promise<void> | null = null
  let lastSweep = Date.now()
  let sweepFailed = false
  async function sweepNow (): Promise<void> {
    lastSweep = Date.now()
    let failed = false
    const owners = registry.owners()
    for (let i = 0; i < owners.length; i += SWEEP_BATCH) {
      const results = await Promise.allSettled(owners.slice(i, i + SWEEP_BATCH).map(judge))
      if (results.some((r) => r.status === 'rejected')) failed = true
    }
    sweepFailed = failed
  }
  const sweep = (): Promise<void> => {
    sweeping ??= sweepNow().finally(() => { sweeping = null })
    return sweeping
  }

  const channel = openLiveChannel(fastify.redis, config.redis, fastify.log, {
    notice: (notice: LiveNotice) => {
      const key = 'u' in notice ? userKey(notice.u) : clientKey(notice.c)
      judge(key).catch(() => { sweepFailed = true })
    },
    // Whatever was published while the channel was lost is judged now.
    resubscribed: () => { void sweep() }
  })
  fastify.sessions.onUserChange = (userId) => channel.publish({ u: userId })
  fastify.clients.onClientChange = (clientId) => channel.publish({ c: clientId })

  // Once a second: a swapped route table is judged at once (no Redis needed), and the sweep runs
  // when due: every SWEEP_MS, every DEGRADED_SWEEP_MS while the channel is lost or the last sweep failed.
  let judgedTable: RouteMatcher | null = null
  fastify.addHook('onReady', async () => { judgedTable = table() })
  const ticker = setInterval(() => {
    const current = table()
    if (current !== judgedTable) {
      for (const conn of registry.all()) if (!stillAllowed(conn, current, null)) conn.end('forbidden')
      judgedTable = current
    }
    if (registry.count('websocket') + registry.count('stream') === 0) return
    const every = channel.up && !sweepFailed ? SWEEP_MS : DEGRADED_SWEEP_MS
    if (sweeping === null && Date.now() - lastSweep >= every) void sweep()
  }, 1000)
  ticker.unref()

  /** A connection record; `end` is wired by whoever holds the socket. */
  function connection (request: FastifyRequest, kind: LiveKind, route: ProxyRoute, end: (reason: EndReason) => void): LiveConnection {
    const { key, owner } = ownerOf(request)
    return { kind, owner, ownerKey: key, path: splitUrl(request.url).path, route, ip: eventIp(request), requestId: request.id, end }
  }

  const forwardHandshake: LiveConnections['forwardHandshake'] = (request, reply, route, target) => {
    const handshake = handshakeOf(request)!
    let endSocket: ((reason: EndReason) => void) | null = null
    const conn = connection(request, 'websocket', route, (reason) => endSocket?.(reason))
    if (!registry.add(conn)) {
      reply.send(gatewayError('rate_limited', 'too many live connections', { 'retry-after': '1' }))
      return
    }
    let done = false
    relay.forward(request, reply, handshake.socket, handshake.head, target, {
      setEnd: (end) => { endSocket = end },
      failed: () => { done = true; registry.remove(conn) },
      closed: (endedBy) => {
        if (done) return
        done = true
        registry.remove(conn)
        recordEnd(conn, endedBy)
      }
    })
  }

  // Streamed answers: registered when their head goes out, ended by ending the body.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (request.proxyRoute === null || !(payload instanceof Readable) || !isEventStream(reply.getHeader('content-type'))) {
      done(null, payload)
      return
    }
    const out = new PassThrough()
    let finished = false
    const conn = connection(request, 'stream', request.proxyRoute.route, (reason) => {
      if (finished) return
      finished = true
      payload.unpipe(out)
      payload.destroy()
      out.end()
      registry.remove(conn)
      recordEnd(conn, reason)
    })
    if (!registry.add(conn)) {
      payload.destroy()
      done(gatewayError('rate_limited', 'too many live connections', { 'retry-after': '1' }))
      return
    }
    reply.raw.once('close', () => {
      if (finished) return
      finished = true
      if (registry.remove(conn)) recordEnd(conn, 'closed')
    })
    payload.on('error', (err) => out.destroy(err))
    payload.pipe(out)
    done(null, out)
  })

  listenForHandshakes(fastify)

  const publicOrigin = config.publicUrl === undefined ? undefined : new URL(config.publicUrl).origin
  fastify.decorate<LiveConnections>('live', {
    registry,
    tickets,
    channelUp: () => channel.up,
    sweep,
    checkHandshake: (request, routes) => checkHandshake(request, routes, { tickets, publicOrigin, corsOrigins: config.corsOrigins }),
    forwardHandshake
  })

  fastify.addHook('preClose', async () => {
    clearInterval(ticker)
    const open = registry.all()
    for (const conn of open) conn.end('shutting_down')
    // WebSockets finish their close handshake (bounded): then the server can close.
    const deadline = Date.now() + SHUTDOWN_WAIT_MS
    while (registry.count('websocket') > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  })
  fastify.addHook('onClose', async () => {
    relay.close()
    await channel.close()
  })
}, { name: 'live-connections', dependencies: ['metrics', 'session-store', 'client-store', 'audit'] })
