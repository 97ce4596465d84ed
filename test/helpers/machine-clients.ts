/**
 * Helpers of the machine-client tests (docs/machine-clients.md): registering a client through the admin API,
 * and raw token requests over node:http (form bodies as given, any headers, optionally from
 * another loopback address so the gateway sees another client IP).
 */
import type { OutgoingHttpHeaders } from 'node:http'
import { call, type CallResult } from './abuse.js'
import { httpRequest as fetchRequest } from '../helper.js'

export interface RegisteredClient {
  client_id: string
  client_secret: string
  name: string
  scopes: string[]
  created_at: string
}

/** POST /admin/clients as the given admin; throws unless 201. */
export async function registerClient (baseUrl: string, adminToken: string, scopes: string[],
  name = 'test client'): Promise<RegisteredClient> {
  const res = await fetchRequest(baseUrl, 'POST', '/admin/clients', { token: adminToken, body: { name, scopes } })
  if (res.status !== 201) throw new Error(`client registration failed: ${res.status} ${res.text}`)
  return res.body as RegisteredClient
}

export type RawResult = CallResult

export interface RawOptions {
  body?: string | Buffer
  contentType?: string
  headers?: OutgoingHttpHeaders
  from?: string
}

/** One request through node:http on a fresh connection, the body sent as is (a form by default). */
export function rawCall (baseUrl: string, method: string, path: string, opts: RawOptions = {}): Promise<RawResult> {
  return call(baseUrl, method, path, {
    ...(opts.body !== undefined ? { rawBody: opts.body } : {}),
    ...(opts.contentType !== undefined ? { contentType: opts.contentType } : {}),
    ...(opts.headers !== undefined ? { headers: opts.headers } : {}),
    ...(opts.from !== undefined ? { from: opts.from } : {})
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
