/**
 * Helpers of the standard OAuth endpoint tests: form posts to /oauth/introspect, /oauth/revoke and
 * the token exchange grant, with HTTP Basic client authentication.
 */
import type { OutgoingHttpHeaders } from 'node:http'
import { basicAuth, rawCall, type RawResult, type RegisteredClient } from './machine-clients.js'

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'

export interface FormPost {
  client?: RegisteredClient
  /** A wrong secret for `client`. */
  secret?: string
  form?: Array<[string, string]>
  headers?: OutgoingHttpHeaders
  from?: string
}

/** POST a form to an OAuth endpoint, the client authenticated by HTTP Basic when given. */
export function formPost (baseUrl: string, path: string, req: FormPost): Promise<RawResult> {
  const headers: OutgoingHttpHeaders = { ...req.headers }
  if (req.client !== undefined) headers.authorization = basicAuth(req.client.client_id, req.secret ?? req.client.client_secret)
  return rawCall(baseUrl, 'POST', path, { body: new URLSearchParams(req.form ?? []).toString(), headers,
    ...(req.from !== undefined ? { from: req.from } : {}) })
}

export function introspect (baseUrl: string, client: RegisteredClient, token: string,
  headers: OutgoingHttpHeaders = {}): Promise<RawResult> {
  return formPost(baseUrl, '/oauth/introspect', { client, form: [['token', token]], headers })
}

/** A token exchange for `audience`; throws unless 200 and returns the delegated token. */
export async function exchange (baseUrl: string, client: RegisteredClient, subject: string, audience: string,
  extra: Array<[string, string]> = []): Promise<string> {
  const res = await formPost(baseUrl, '/oauth/token', {
    client,
    form: [['grant_type', TOKEN_EXCHANGE], ['subject_token', subject], ['subject_token_type', ACCESS_TOKEN_TYPE], ['audience', audience],
      ...extra]
  })
  if (res.status !== 200) throw new Error(`token exchange failed: ${res.status} ${res.text}`)
  return res.body.access_token as string
}
