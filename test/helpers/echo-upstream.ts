/**
 * An upstream that shows exactly what arrives: a node:http server on a free port that records every
 * request (method, url, headers, body) and answers 200 JSON of it. For the failure tests it can be
 * told to never answer (504), or to drop the connection without answering (502); a request is
 * recorded the moment its head arrives, so `count` also counts requests that never complete.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

export interface EchoRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** Header names and values exactly as they came, in order. */
  rawHeaders: string[]
  /** The body received so far (the whole body once `complete`). */
  body: string
  bodyBytes: number
  /** True once the whole body arrived. */
  complete: boolean
}

/** What the echo does with a request: answer, never answer, or drop the connection. */
export type EchoBehaviour = 'answer' | 'hang' | 'destroy'

export interface EchoOptions {
  /** Decides per request (default: always 'answer'). */
  behaviour?: EchoBehaviour | ((req: IncomingMessage) => EchoBehaviour)
  /** Milliseconds to wait before answering (the 'answer' behaviour only). */
  delayMs?: number
  /** Extra headers of every answer. */
  responseHeaders?: Record<string, string>
}

export interface EchoUpstream {
  url: string
  port: number
  requests: EchoRequest[]
  /** Number of requests whose head arrived. */
  readonly count: number
  /** Requests whose path is `path` or below it. */
  under: (path: string) => EchoRequest[]
  /** Changes the behaviour for the following requests. */
  setBehaviour: (behaviour: EchoOptions['behaviour']) => void
  reset: () => void
  /** Ends every hanging request and closes the server. */
  close: () => Promise<void>
}

interface Teardown { teardown: (fn: () => unknown) => void }

export async function startEcho (t: Teardown, opts: EchoOptions = {}): Promise<EchoUpstream> {
  const requests: EchoRequest[] = []
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  let behaviour = opts.behaviour ?? 'answer'

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const record: EchoRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: '',
      bodyBytes: 0,
      complete: false
    }
    requests.push(record)
    const chosen = typeof behaviour === 'function' ? behaviour(req) : behaviour
    if (chosen === 'destroy') {
      req.socket.destroy()
      return
    }
    req.on('data', (chunk: Buffer) => {
      record.bodyBytes += chunk.length
      if (record.body.length < 64 * 1024) record.body += chunk.toString('utf8')
    })
    req.on('error', () => { /* the gateway may abort an upload */ })
    req.on('end', () => {
      record.complete = true
      if (chosen === 'hang') return // never answers: the gateway's timeout must fire
      const answer = (): void => {
        const body = JSON.stringify({ method: record.method, url: record.url, headers: record.headers, body: record.body })
        res.writeHead(200, { ...opts.responseHeaders, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      }
      if (opts.delayMs === undefined || opts.delayMs <= 0) answer()
      else {
        const timer = setTimeout(() => { timers.delete(timer); answer() }, opts.delayMs)
        timers.add(timer)
      }
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  // The echo must accept heads as large as the gateway does.
  server.maxHeadersCount = 0
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }

  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    for (const timer of timers) clearTimeout(timer)
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.teardown(close)

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get count () { return requests.length },
    under: (path) => requests.filter((r) => {
      const p = r.url.split('?')[0] ?? ''
      return p === path || p.startsWith(path + '/')
    }),
    setBehaviour: (b) => { behaviour = b ?? 'answer' },
    reset: () => { requests.length = 0 },
    close
  }
}
