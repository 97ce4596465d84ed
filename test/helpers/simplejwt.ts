/** Helpers of the simplejwt-compatibility tests: form bodies, metrics samples, old-service tokens. */
import { randomUUID, createHmac } from 'node:crypto'
import type { Harness, HttpResult } from '../helper.js'
import { assemble, b64url } from './jwt-craft.js'

/** POST with an application/x-www-form-urlencoded body, as DRF clients send it. */
export function postForm (h: Harness, path: string, fields: Record<string, string>,
  headers: Record<string, string> = {}): Promise<HttpResult> {
  return h.request('POST', path, { rawBody: new URLSearchParams(fields).toString(), contentType: 'application/x-www-form-urlencoded',
    headers })
}

/** The value of one Prometheus sample (0 when absent). */
export async function metricValue (h: Harness, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await h.request('GET', '/metrics')).text
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const [series = '', value = ''] = line.split(' ')
    if (series !== name && !series.startsWith(`${name}{`)) continue
    if (want.every((w) => series.includes(w))) return Number(value)
  }
  return 0
}

export const LEGACY_KEY = 'django-insecure-old-service-signing-key-for-tests'

/** A token as simplejwt 5.2 issues it (HS256 by default); `alg` and the key may be overridden for attacks. */
export function legacyToken (claims: Record<string, unknown> = {}, opts: { key?: string, alg?: string } = {}): string {
  const now = Math.floor(Date.now() / 1000)
  const payload = { token_type: 'refresh', exp: now + 86400, iat: now, jti: randomUUID().replaceAll('-', ''), user_id: 1001, ...claims }
  const alg = opts.alg ?? 'HS256'
  const header = { alg, typ: 'JWT' }
  if (alg === 'none') return assemble(header, payload, '')
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg] ?? 'sha256'
  const input = `${b64url(header)}.${b64url(payload)}`
  return `${input}.${createHmac(hash, opts.key ?? LEGACY_KEY).update(input).digest('base64url')}`
}
