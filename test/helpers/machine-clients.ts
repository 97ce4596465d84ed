/**
 * Helpers of the machine-client tests (contract 13): registering a client through the admin API,
 * and raw token requests over node:http (form bodies as given, any headers, optionally from
 * another loopback address so the gateway sees another client IP).
 */
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import { httpRequest as fetchRequest } from '../helper.js'

export interface RegisteredClient {
  client_id: string
  client_secret: string
  name: string
  scopes: string[]
  created_at: string
}

/** POST /admin/clients as the given admin; throws unless 201. */
export async function registerClient (baseUrl: string, adminToken: string, scopes: string[], name = 'test client'): Promise<RegisteredClient> {
  const res = await fetchRequest(baseUrl, 'POST', '/admin/clients', { token: adminToken, body: { name, scopes } })
  if (res.status !== 201) throw new Error(`client registration failed: ${res.status} ${res.text}`)
  return res.body as RegisteredClient
}

export interface RawResult { status: number, headers: IncomingHttpHeaders, body: any, text: string }

export interface RawOptions {
  body?: string | Buffer
  contentType?: string
  headers?: OutgoingHttpHeaders
  from?: string
}

/** One request through node:http on a fresh connection. */
export function rawCall (baseUrl: string, method: string, path: string, opts: RawOptions = {}): Promise<RawResult> {
  const { hostname, port } = new URL(baseUrl)
  const headers: OutgoingHttpHeaders = { ...opts.headers }
  if (opts.body !== undefined) {
    headers['content-type'] ??= opts.contentType ?? 'application/x-www-form-urlencoded'
    headers['content-length'] = Buffer.byteLength(opts.body)
  }
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
    // The gateway may answer (413) and close before the whole body is written.
    req.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err) })
    req.end(opts.body)
  })
}

/** RFC 6749 2.3.1: the Basic credentials of a client (id and secret form-urlencoded first). */
export function basicAuth (clientId: string, secret: string): string {
  const enc = (s: string): string => encodeURIComponent(s).replaceAll('%20', '+')
  return 'Basic ' + Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')
}

export interface TokenRequest {
  /** Credentials sent with HTTP Basic. */
  basic?: { id: string, secret: string }
  /** Form parameters, in order; a name may repeat. */
  form?: Array<[string, string]>
  from?: string
  headers?: OutgoingHttpHeaders
}

/** POST /oauth/token with a form body. */
export function tokenCall (baseUrl: string, req: TokenRequest): Promise<RawResult> {
  const body = new URLSearchParams(req.form ?? []).toString()
  const headers: OutgoingHttpHeaders = { ...req.headers }
  if (req.basic !== undefined) headers.authorization = basicAuth(req.basic.id, req.basic.secret)
  return rawCall(baseUrl, 'POST', '/oauth/token', { body, headers, ...(req.from !== undefined ? { from: req.from } : {}) })
}

/** A client token by HTTP Basic; throws unless 200. */
export async function clientToken (baseUrl: string, client: RegisteredClient, scope?: string): Promise<string> {
  const form: Array<[string, string]> = [['grant_type', 'client_credentials']]
  if (scope !== undefined) form.push(['scope', scope])
  const res = await tokenCall(baseUrl, { basic: { id: client.client_id, secret: client.client_secret }, form })
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${res.text}`)
  return res.body.access_token as string
}
