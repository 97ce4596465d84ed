/**
 * Helpers of the abuse-protection tests (docs/abuse-protection.md): requests from another loopback
 * address (a real different client IP, no forwarded headers involved), and ending a limit's
 * window early by expiring its Redis counters, so the real expiry is exercised without waiting
 * a minute.
 */
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import type { RedisProcess } from './redis-server.js'

export interface CallResult {
  status: number
  headers: IncomingHttpHeaders
  body: any
  text: string
}

export interface CallOptions {
  body?: unknown
  token?: string
  headers?: OutgoingHttpHeaders
  /** The client socket's local address, e.g. 127.0.0.2: the gateway sees another client IP. */
  from?: string
  /** Sent as is instead of `body` (a form, bytes), with `contentType` (default application/x-www-form-urlencoded). */
  rawBody?: string | Buffer
  contentType?: string
}

/** One request through node:http (fresh connection), optionally from another local address. */
export async function call (baseUrl: string, method: string, path: string, opts: CallOptions = {}): Promise<CallResult> {
  const { hostname, port } = new URL(baseUrl)
  const headers: OutgoingHttpHeaders = { ...opts.headers }
  const payload = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body))
  if (payload !== undefined) {
    headers['content-type'] ??= opts.rawBody !== undefined ? opts.contentType ?? 'application/x-www-form-urlencoded' : 'application/json'
    headers['content-length'] = Buffer.byteLength(payload)
  }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: hostname, port: Number(port), method, path, headers, agent: false,
      ...(opts.from !== undefined ? { localAddress: opts.from } : {})
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        try { body = text.length > 0 ? JSON.parse(text) : null } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text })
      })
    })
    // The gateway may answer (413) and close before a raw body is all written.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (opts.rawBody !== undefined && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) return
      reject(err)
    })
    req.end(payload)
  })
}

/** POST /auth/login as `call`. */
export function loginCall (baseUrl: string, username: string, password: string, opts: Omit<CallOptions, 'body'> = {}): Promise<CallResult> {
  return call(baseUrl, 'POST', '/auth/login', { ...opts, body: { username, password } })
}

/**
 * Ends the window of every counter matching `pattern` now: PEXPIRE 1 ms, so Redis itself expires
 * it. Returns how many counters there were (a test asserts it found the counter it meant).
 * Works on one Redis and on a cluster alike.
 */
export async function expireCounters (redis: RedisProcess, pattern: string): Promise<number> {
  const keys = await redis.keys(pattern)
  if (keys.length === 0) return 0
  const client = redis.client()
  try {
    for (const key of keys) await client.pexpire(key, 1)
    return keys.length
  } finally {
    client.disconnect()
  }
}

/** A header as one string ('' when absent). */
export function header (res: { headers: IncomingHttpHeaders }, name: string): string {
  const v = res.headers[name]
  return Array.isArray(v) ? v.join(', ') : (v ?? '')
}
