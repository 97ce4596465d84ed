/**
 * A WebSocket client for tests (Node's `ws`): opens a socket through the gateway and either gives
 * the open socket, with every message it received and its close once it closes, or the HTTP answer
 * that refused the handshake. Tests wait for conditions, never fixed sleeps.
 */
import WebSocket from 'ws'
import { waitFor } from './redis-server.js'

export interface OpenSocket {
  ok: true
  ws: WebSocket
  messages: string[]
  /** Set once the socket closed. */
  closed: { code: number, reason: string } | null
  /** Waits for the close; returns it. */
  waitClosed: (timeoutMs?: number) => Promise<{ code: number, reason: string }>
  /** Waits until a message matches; returns it. */
  next: (match: (m: string) => boolean, what: string, timeoutMs?: number) => Promise<string>
}

export interface RefusedSocket {
  ok: false
  status: number
  headers: Record<string, string | string[] | undefined>
  body: any
}

export interface WsOptions {
  token?: string
  origin?: string
  headers?: Record<string, string>
}

/** `baseUrl` is the gateway's http URL; `path` may carry a query. */
export function openWs (baseUrl: string, path: string, opts: WsOptions = {}): Promise<OpenSocket | RefusedSocket> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + path, { headers, ...(opts.origin !== undefined ? { origin: opts.origin } : {}), perMessageDeflate: false })
  return new Promise((resolve, reject) => {
    const messages: string[] = []
    ws.on('message', (data) => { messages.push(data.toString()) })
    ws.once('open', () => {
      const sock: OpenSocket = {
        ok: true,
        ws,
        messages,
        closed: null,
        waitClosed: async (timeoutMs = 10_000) => {
          await waitFor(() => sock.closed !== null, 'the socket to close', timeoutMs)
          return sock.closed!
        },
        next: async (match, what, timeoutMs = 10_000) => {
          let found: string | undefined
          await waitFor(() => { found = messages.find(match); return found !== undefined }, what, timeoutMs)
          return found!
        }
      }
      ws.on('close', (code, reason) => { sock.closed = { code, reason: reason.toString() } })
      resolve(sock)
    })
    ws.once('unexpected-response', (_req, res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => {
        let body: unknown = text
        try { body = JSON.parse(text) } catch { /* not JSON */ }
        resolve({ ok: false, status: res.statusCode ?? 0, headers: res.headers, body })
        ws.terminate()
      })
    })
    ws.on('error', (err) => { if (ws.readyState === WebSocket.CONNECTING) reject(err) })
  })
}

/** The open socket, or a failed test naming the refusal. */
export function mustOpen (sock: OpenSocket | RefusedSocket): OpenSocket {
  if (!sock.ok) throw new Error(`handshake refused: ${sock.status} ${JSON.stringify(sock.body)}`)
  return sock
}
