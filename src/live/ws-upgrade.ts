/**
 * How a WebSocket handshake enters the gateway. Node hands an upgrade request to the server's
 * `upgrade` event with its bare socket; here it is dispatched through Fastify's router with a
 * response bound to that socket, so it meets every hook and the proxy's catch-all route like any
 * request, and every refusal is an ordinary HTTP answer (problem+json), never a 101. Only a GET
 * asking for `websocket` is taken this way (the server's shouldUpgradeCallback,
 * src/server-options.ts); any other upgrade (h2c) stays an ordinary request.
 *
 * Before the decision, `checkHandshake` applies what only a handshake has: the ticket (instead of a
 * token), the Origin check against cross-site WebSocket hijacking, and the route's `websocket` flag.
 */
import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { gatewayError } from '../errors.js'
import type { RouteMatcher } from '../proxy/decide.js'
import { splitUrl } from '../proxy/normalize-path.js'
import type { TicketStore } from './ws-ticket.js'

interface Handshake { socket: Duplex, head: Buffer }

const handshakes = new WeakMap<IncomingMessage, Handshake>()

/** Is this a GET asking to become a WebSocket? (The server's shouldUpgradeCallback.) */
export function isWebSocketUpgrade (req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade
  return req.method === 'GET' && typeof upgrade === 'string' && upgrade.trim().toLowerCase() === 'websocket'
}

/** The socket and early bytes of a WebSocket handshake; undefined for any other request. */
export function handshakeOf (request: FastifyRequest): Handshake | undefined {
  return handshakes.get(request.raw)
}

/** Dispatches every WebSocket handshake through the app's router (see above). */
export function listenForHandshakes (fastify: FastifyInstance): void {
  fastify.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    handshakes.set(req, { socket, head })
    socket.on('error', () => socket.destroy())
    const res = new ServerResponse(req)
    // One handshake per connection: after a refusal the socket closes.
    res.shouldKeepAlive = false
    res.assignSocket(socket as Socket)
    res.once('finish', () => {
      socket.end()
      setTimeout(() => socket.destroy(), 1000).unref()
    })
    fastify.routing(req, res)
  })
}

/** The request's path and query without its `ticket` parameter (what the upstream gets). */
export function withoutTicket (url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const kept = url.slice(q + 1).split('&').filter((pair) => pair !== '' && paramName(pair) !== 'ticket')
  return kept.length === 0 ? url.slice(0, q) : `${url.slice(0, q)}?${kept.join('&')}`
}

function paramName (pair: string): string {
  const eq = pair.indexOf('=')
  const raw = eq === -1 ? pair : pair.slice(0, eq)
  try { return decodeURIComponent(raw.replace(/\+/g, ' ')) } catch { return raw }
}

function ticketsOf (url: string): string[] {
  const q = url.indexOf('?')
  if (q === -1) return []
  return new URLSearchParams(url.slice(q + 1)).getAll('ticket')
}

export interface HandshakeChecks {
  tickets: TicketStore
  /** PUBLIC_URL's origin; undefined: the request's own scheme and host. */
  publicOrigin: string | undefined
  corsOrigins: readonly string[]
}

/** Handshakes whose token came from a ticket (see `admittedByTicket`). */
const ticketHandshakes = new WeakSet<FastifyRequest>()

/**
 * Whether the request's token came from a ticket. A browser cannot send a DPoP proof on a
 * WebSocket: the ticket stands in for it, as it was issued to a request that passed the token's
 * sender constraints, is single use and lives 30 s. A fingerprint cookie is still required.
 */
export function admittedByTicket (request: FastifyRequest): boolean {
  return ticketHandshakes.has(request)
}

/**
 * What a handshake must pass before the proxy's decision: a ticket (consumed whatever follows) in
 * place of the token, an Origin of the gateway or CORS_ORIGINS, a route that takes upgrades. A
 * ticket becomes the Bearer token it stands for, so the decision is the same as for a header.
 */
export async function checkHandshake (request: FastifyRequest, table: RouteMatcher, checks: HandshakeChecks): Promise<void> {
  const tickets = ticketsOf(request.url)
  if (tickets.length > 0) {
    // Consumed when first presented, whatever the outcome.
    const token = await Promise.all(tickets.map((t) => checks.tickets.take(t)))
    if (tickets.length > 1 || request.headers.authorization !== undefined) {
      throw gatewayError('invalid_request', 'a handshake carries a ticket or a token, not both')
    }
    if (token[0] === null || token[0] === undefined) throw gatewayError('token_invalid', 'the ticket is used, expired or unknown')
    request.headers.authorization = `Bearer ${token[0]}`
    ticketHandshakes.add(request)
  }
  const origins = request.raw.headersDistinct.origin
  if (origins !== undefined) {
    const own = checks.publicOrigin ?? `${request.protocol}://${request.host}`
    const origin = origins[0]
    if (origins.length !== 1 || origin === undefined || origin === 'null' || (origin !== own && !checks.corsOrigins.includes(origin))) {
      throw gatewayError('csrf_rejected', 'a WebSocket handshake needs an Origin of the gateway or of CORS_ORIGINS')
    }
  }
  const route = table.match(splitUrl(request.url).path)
  if (route !== undefined && route.websocket !== true) throw gatewayError('invalid_request', 'this route does not take WebSocket upgrades')
}
