/**
 * Requests that fetch() cannot make: a path sent byte for byte (fetch resolves dot segments and
 * re-encodes), forbidden headers such as Connection, streamed bodies, and raw bytes on a socket
 * (smuggling attempts, oversized heads).
 */
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import type { Readable } from 'node:stream'

export interface RawResult {
  status: number
  headers: IncomingHttpHeaders
  text: string
  body: any
}

function parse (text: string): unknown {
  try { return text.length > 0 ? JSON.parse(text) : null } catch { return text }
}

/** One request through node:http with the path exactly as given (no normalization). */
export async function rawPathRequest (baseUrl: string, method: string, path: string,
  opts: { headers?: OutgoingHttpHeaders, token?: string, body?: string | Readable } = {}): Promise<RawResult> {
  const { hostname, port } = new URL(baseUrl)
  const headers: OutgoingHttpHeaders = { ...opts.headers }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  if (typeof opts.body === 'string') {
    headers['content-length'] ??= Buffer.byteLength(opts.body)
    headers['content-type'] ??= 'application/json'
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port: Number(port), method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parse(text) })
      })
    })
    req.on('error', reject)
    if (opts.body === undefined) req.end()
    else if (typeof opts.body === 'string') req.end(opts.body)
    else opts.body.pipe(req)
  })
}

export interface SocketResult {
  /** Everything the server sent before closing (or before the time ran out). */
  text: string
  /** Status of the first response, 0 when none came. */
  status: number
  /** True when the server closed the connection (rather than the time running out). */
  closed: boolean
}

/** Writes raw bytes to the server and collects its answer until it closes the connection. */
export async function rawSocket (baseUrl: string, payload: string | Buffer, timeoutMs = 5_000): Promise<SocketResult> {
  const { hostname, port } = new URL(baseUrl)
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = connect(Number(port), hostname)
    let settled = false
    const finish = (closed: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text)
      resolve({ text, status: m === null ? 0 : Number(m[1]), closed })
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => finish(true)) // a reset after the answer is still an answer
    socket.on('end', () => finish(true))
    socket.on('close', () => finish(true))
    socket.on('connect', () => socket.write(payload))
  })
}

/** The JSON body of the first response in raw socket output, or undefined. */
export function rawBody (text: string): any {
  const at = text.indexOf('\r\n\r\n')
  if (at === -1) return undefined
  try { return JSON.parse(text.slice(at + 4)) } catch { return undefined }
}
