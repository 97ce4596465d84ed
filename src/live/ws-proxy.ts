/**
 * WebSocket proxying. A handshake reaches the proxy's catch-all route like any request (see
 * ws-upgrade.ts) and is authorized there by the proxy's one decision (src/proxy/decide.ts). Here the
 * admitted handshake is carried on: first to the upstream (with the identity headers and assertion
 * of any proxied request), and only once the upstream answered 101 is the client's handshake
 * accepted. Until then every answer is an ordinary HTTP one: a refusal of the upstream reaches the
 * client as the upstream gave it, a failure is 502 `upstream_unavailable` / 504 `upstream_timeout`.
 *
 * The gateway terminates both sockets (`ws`) and relays messages, so it can close a socket with a
 * code of its own (1008 on revocation, 1001 on shutdown) and refuse a message larger than the
 * route's body limit (1009). The route's timeout bounds only the wait for the upstream's 101.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import WebSocket, { WebSocketServer, type RawData } from 'ws'
import { gatewayError, type GatewayError } from '../errors.js'
import { sendProblem } from '../lib/problem.js'
import { clientResponseHeaders } from '../proxy/response-headers.js'
import type { EndedBy, EndReason } from './live-registry.js'

/** Sent before a peer is read from again (backpressure), and the level it must drain to. */
const HIGH_WATER = 1024 * 1024
const LOW_WATER = 256 * 1024
/** How long a closing socket may take to finish its close handshake before it is cut. */
const CLOSE_GRACE_MS = 2000
/** A client that answers no ping within this interval is gone (its socket is cut). */
export const HEARTBEAT_MS = 30_000

/** The handshake headers `ws` writes itself; the client's must not be sent twice. */
const HANDSHAKE_HEADERS = [
  'host',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'content-length',
  'transfer-encoding'
]

export interface UpstreamTarget {
  /** The upstream's origin, http or https. */
  origin: string
  /** Path and query on the upstream (the ticket already removed). */
  path: string
  /** The headers of src/proxy/upstream-headers.ts. */
  headers: IncomingHttpHeaders
  timeoutMs: number
  /** The route's body limit: the largest message either way. */
  maxPayload: number
}

/** What the relay reports of one socket's life. */
export interface RelayHooks {
  /** How to end the connection from now on (called at the handshake's start, and again once both sides are open). */
  setEnd: (end: (reason: EndReason) => void) => void
  /** The handshake failed (nothing was opened). */
  failed: () => void
  /** The client socket closed, and why. */
  closed: (endedBy: EndedBy) => void
}

/** A close code one may send (RFC 6455 7.4): 1005, 1006 and 1015 are never sent. */
function sendableCode (code: number): number | undefined {
  if ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)) return code
  return undefined
}

function parseProtocols (header: string | string[] | undefined): string[] {
  if (typeof header !== 'string') return []
  return header.split(',').map((p) => p.trim()).filter((p) => p.length > 0)
}

/** Client sockets that answered the last ping. */
const alive = new WeakSet<WebSocket>()

export class WebSocketRelay {
  /** One server per message size limit (`ws` fixes it per server). */
  readonly #servers = new Map<number, WebSocketServer>()
  /** The subprotocol the upstream chose, for the client's handshake. */
  readonly #protocols = new WeakMap<IncomingMessage, string>()
  readonly #clients = new Set<WebSocket>()
  readonly #heartbeat: NodeJS.Timeout

  constructor (readonly ca: readonly string[] | undefined) {
    this.#heartbeat = setInterval(() => {
      for (const client of this.#clients) {
        if (!alive.has(client)) { client.terminate(); continue }
        alive.delete(client)
        client.ping()
      }
    }, HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  get open (): number { return this.#clients.size }

  #server (maxPayload: number): WebSocketServer {
    let server = this.#servers.get(maxPayload)
    if (server === undefined) {
      server = new WebSocketServer({
        noServer: true,
        clientTracking: false,
        perMessageDeflate: false,
        maxPayload,
        handleProtocols: (_offered, req) => this.#protocols.get(req) ?? false
      })
      this.#servers.set(maxPayload, server)
    }
    return server
  }

  /**
   * Opens the upstream socket, then accepts the client's. The reply answers every failure until
   * the 101; after it the reply is hijacked and the socket belongs to the relay.
   */
  forward (request: FastifyRequest, reply: FastifyReply, socket: Duplex, head: Buffer, target: UpstreamTarget, hooks: RelayHooks): void {
    const headers: IncomingHttpHeaders = { ...target.headers }
    for (const name of HANDSHAKE_HEADERS) delete headers[name]
    const url = target.origin.replace(/^http/, 'ws') + target.path
    const upstream = new WebSocket(url, parseProtocols(request.headers['sec-websocket-protocol']), {
      headers: headers as Record<string, string>,
      perMessageDeflate: false,
      maxPayload: target.maxPayload,
      followRedirects: false,
      rejectUnauthorized: true,
      ...(this.ca !== undefined ? { ca: [...this.ca] } : {})
    })
    let settled = false
    let endedEarly: EndReason | null = null
    const refuse = (error: GatewayError): void => {
      if (settled) return
      settled = true
      clearTimeout(deadline)
      upstream.removeAllListeners('open')
      upstream.terminate()
      hooks.failed()
      if (!socket.destroyed) sendProblem(error, request, reply)
    }
    // The route's timeout bounds the wait for the upstream's 101, never the socket's life.
    const deadline = setTimeout(() => refuse(gatewayError('upstream_timeout')), target.timeoutMs)
    socket.once('close', () => refuse(gatewayError('upstream_unavailable', 'the client left during the handshake')))
    upstream.on('error', (err) => {
      if (!settled) request.log.warn({ upstream: target.origin, err: { message: err.message } }, 'upstream WebSocket handshake failed')
      refuse(gatewayError('upstream_unavailable'))
    })
    upstream.on('unexpected-response', (upstreamReq, res) => {
      if (settled) { upstreamReq.destroy(); return }
      settled = true
      clearTimeout(deadline)
      hooks.failed()
      // The upstream refused the upgrade: the client gets its answer, as for any request.
      try {
        reply.code(res.statusCode ?? 502)
      } catch {
        upstreamReq.destroy()
        sendProblem(gatewayError('upstream_unavailable'), request, reply)
        return
      }
      res.once('end', () => upstreamReq.destroy())
      reply.headers(clientResponseHeaders(res.headers)).header('connection', 'close').send(res)
    })
    upstream.once('open', () => {
      if (settled) { upstream.terminate(); return }
      settled = true
      clearTimeout(deadline)
      if (socket.destroyed) { upstream.terminate(); hooks.failed(); return }
      reply.hijack()
      reply.raw.detachSocket(socket as Parameters<typeof reply.raw.detachSocket>[0])
      this.#protocols.set(request.raw, upstream.protocol)
      this.#server(target.maxPayload).handleUpgrade(request.raw, socket, head, (client) => {
        this.#relay(client, upstream, hooks, () => endedEarly)
      })
    })
    // A revocation while the handshake is under way: the upstream is dropped, the client refused.
    hooks.setEnd((reason) => {
      if (settled) return
      endedEarly = reason
      refuse(reason === 'forbidden' ? gatewayError('forbidden') : reason === 'shutting_down' ? gatewayError('shutting_down')
        : gatewayError('token_revoked'))
    })
  }

  #relay (client: WebSocket, upstream: WebSocket, hooks: RelayHooks, early: () => EndReason | null): void {
    this.#clients.add(client)
    alive.add(client)
    client.on('pong', () => alive.add(client))
    let endedBy: EndedBy | null = null
    const cutLater = (ws: WebSocket): void => {
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref()
    }
    const end = (reason: EndReason): void => {
      if (endedBy !== null) return
      endedBy = reason
      const code = reason === 'shutting_down' ? 1001 : 1008
      client.close(code, reason)
      upstream.close(code, reason)
      cutLater(client)
      cutLater(upstream)
    }
    hooks.setEnd(end)
    relayMessages(client, upstream)
    relayMessages(upstream, client)
    client.on('error', (err: Error & { code?: string }) => {
      // `ws` closes with 1009 itself after a message over maxPayload.
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') endedBy ??= 'message_too_large'
    })
    upstream.on('error', () => { /* its close follows */ })
    client.once('close', (code, reason) => {
      this.#clients.delete(client)
      hooks.closed(endedBy ?? 'closed')
      passClose(upstream, code, reason)
    })
    upstream.once('close', (code, reason) => { passClose(client, code, reason) })
    const pending = early()
    if (pending !== null) end(pending)
  }

  /** Closes every server; sockets are closed by their owners (shutdown ends them first). */
  close (): void {
    clearInterval(this.#heartbeat)
    for (const server of this.#servers.values()) server.close()
  }
}

/** Messages of `from` go to `to`, pausing `from` while `to` has too much unsent. */
function relayMessages (from: WebSocket, to: WebSocket): void {
  from.on('message', (data: RawData, isBinary: boolean) => {
    if (to.readyState !== WebSocket.OPEN) return
    to.send(data, { binary: isBinary }, () => {
      if (from.isPaused && to.bufferedAmount < LOW_WATER) from.resume()
    })
    if (to.bufferedAmount > HIGH_WATER) from.pause()
  })
}

/** Passes a close on to the other side, with its code where one may be sent. */
function passClose (to: WebSocket, code: number, reason: Buffer): void {
  if (to.readyState === WebSocket.CLOSED) return
  if (to.readyState === WebSocket.CONNECTING || code === 1006) { to.terminate(); return }
  const sendable = sendableCode(code)
  if (to.readyState === WebSocket.OPEN) {
    if (sendable === undefined) to.close()
    else to.close(sendable, reason.subarray(0, 123))
  }
  setTimeout(() => to.terminate(), CLOSE_GRACE_MS).unref()
}
