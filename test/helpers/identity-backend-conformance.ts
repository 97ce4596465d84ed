/**
 * Checks a running identity backend against docs/identity-backend.openapi.json: real HTTP requests
 * with real assertions, one scenario for every documented (path, method, status), each answer's body
 * validated with ajv against the documented schema of its status. Used for the users stub (the
 * reference implementation) and for the Django adapter.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { SignJWT } from 'jose'
import { KeyRing } from '../../src/tokens/key-ring.js'
import { ROOT } from './processes.js'

export const OPENAPI_PATH = join(ROOT, 'docs/identity-backend.openapi.json')

interface OpenApiResponse { content?: Record<string, { schema: unknown }> }
interface OpenApiOperation { responses: Record<string, OpenApiResponse>, 'x-scope'?: string }
export interface OpenApiDocument { paths: Record<string, Record<string, OpenApiOperation>> }

export function loadIdentityBackendDocument (): OpenApiDocument {
  return JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')) as OpenApiDocument
}

/** Every documented operation as `METHOD path` and its documented statuses. */
export function documentedOperations (
  doc: OpenApiDocument): Array<{ method: string, path: string, statuses: string[], scope: string | undefined }> {
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({
    method: method.toUpperCase(), path, statuses: Object.keys(op.responses), scope: op['x-scope']
  })))
}

/** A validator of a documented response body: null when valid, else ajv's errors as text. */
export function responseValidator (doc: OpenApiDocument): (path: string, method: string, status: number, body: unknown) => string | null {
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  ajv.addSchema(doc as object, 'identity-backend')
  const pointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1')
  return (path, method, status, body) => {
    const op = doc.paths[path]?.[method.toLowerCase()]
    const response = op?.responses[String(status)]
    if (response === undefined) return `status ${status} is not documented for ${method} ${path}`
    const validate = ajv.getSchema(
      `identity-backend#/paths/${pointer(path)}/${method.toLowerCase()}/responses/${status}/content/application~1json/schema`)
    if (validate === undefined) return `no JSON schema for ${method} ${path} ${status}`
    return validate(body) ? null : ajv.errorsText(validate.errors)
  }
}

export interface AssertionOptions { scope?: string, issuer?: string, audience?: string, ttl?: number, keyRing?: KeyRing }

/** Signs an assertion as the gateway does (ES256, kid, iss, aud, sub, iat, exp, jti, scope), or wrong in one way. */
export async function signAssertion (keyRing: KeyRing, opts: AssertionOptions = {}): Promise<string> {
  const ring = opts.keyRing ?? keyRing
  const iss = opts.issuer ?? 'auth-gateway'
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ ...(opts.scope !== undefined ? { scope: opts.scope } : {}), jti: `t-${Math.random().toString(36).slice(2)}` })
    .setProtectedHeader({ alg: 'ES256', kid: ring.signing.kid, typ: 'JWT' })
    .setIssuer(iss)
    .setAudience(opts.audience ?? 'users')
    .setSubject(iss)
    .setIssuedAt(now + (opts.ttl !== undefined && opts.ttl < 0 ? opts.ttl - 60 : 0))
    .setExpirationTime(now + (opts.ttl ?? 60))
    .sign(ring.signing.privateKey)
}

export interface ConformanceSubject {
  baseUrl: string
  /** The gateway's keys, whose public half the backend fetches from its JWKS URL. */
  keyRing: KeyRing
  issuer?: string
  active: { id: string, username: string, password: string, roles: string[] }
  inactive: { id: string, username: string, password: string }
  /** Also the second-factor records (docs/mfa.md); a backend without them leaves this out. */
  factors?: boolean
}

export interface Exchange {
  name: string
  method: string
  path: string
  status: number
  body: unknown
  contentType: string
}

/**
 * Runs every scenario against the backend and returns what came back; the caller asserts (each
 * scenario's expected status, the body's validity, and that every documented status was seen).
 */
export async function runScenarios (s: ConformanceSubject): Promise<Array<Exchange & { expected: number, templatePath: string }>> {
  const issuer = s.issuer ?? 'auth-gateway'
  const stranger = await KeyRing.ephemeral()
  const sign = (opts: AssertionOptions): Promise<string> => signAssertion(s.keyRing, { issuer, ...opts })
  const check = '/internal/credentials/check'
  const lookup = '/internal/users/{id}'
  const byName = '/internal/users'
  type Scenario = [name: string, templatePath: string, method: string, path: string, expected: number, assertion: Promise<string> | null,
    body?: string]
  const creds = (username: string, password: string): string => JSON.stringify({ username, password })
  const scenarios: Scenario[] = [
    ['right password', check, 'POST', check, 200, sign({ scope: 'credentials:check' }), creds(s.active.username, s.active.password)],
    ['wrong password', check, 'POST', check, 401, sign({ scope: 'credentials:check' }), creds(s.active.username, 'not-the-password')],
    ['unknown user', check, 'POST', check, 401, sign({ scope: 'credentials:check' }), creds('nobody-by-that-name', s.active.password)],
    ['inactive user, right password', check, 'POST', check, 401, sign({ scope: 'credentials:check' }),
      creds(s.inactive.username, s.inactive.password)],
    ['body not JSON', check, 'POST', check, 400, sign({ scope: 'credentials:check' }), '{"username": "x", '],
    ['password missing', check, 'POST', check, 400, sign({ scope: 'credentials:check' }), JSON.stringify({ username: s.active.username })],
    ['password not a string', check, 'POST', check, 400, sign({ scope: 'credentials:check' }),
      JSON.stringify({ username: s.active.username, password: 12 })],
    ['body an array', check, 'POST', check, 400, sign({ scope: 'credentials:check' }), '[]'],
    ['check without an assertion', check, 'POST', check, 401, null, creds(s.active.username, s.active.password)],
    ['check with a forged assertion', check, 'POST', check, 401, sign({ scope: 'credentials:check', keyRing: stranger }),
      creds(s.active.username, s.active.password)],
    ['check with another issuer', check, 'POST', check, 401, sign({ scope: 'credentials:check', issuer: 'another-gateway' }),
      creds(s.active.username, s.active.password)],
    ['check with another audience', check, 'POST', check, 401, sign({ scope: 'credentials:check', audience: 'orders' }),
      creds(s.active.username, s.active.password)],
    ['check with an expired assertion', check, 'POST', check, 401, sign({ scope: 'credentials:check', ttl: -5 }),
      creds(s.active.username, s.active.password)],
    ['check with the lookup scope', check, 'POST', check, 403, sign({ scope: 'users:read' }), creds(s.active.username, s.active.password)],
    ['check without a scope', check, 'POST', check, 403, sign({}), creds(s.active.username, s.active.password)],
    ['lookup of an active user', lookup, 'GET', `/internal/users/${s.active.id}`, 200, sign({ scope: 'users:read' })],
    ['lookup of an inactive user', lookup, 'GET', `/internal/users/${s.inactive.id}`, 200, sign({ scope: 'users:read' })],
    ['lookup of an unknown user', lookup, 'GET', '/internal/users/987654321', 404, sign({ scope: 'users:read' })],
    ['lookup of a non-numeric id', lookup, 'GET', '/internal/users/not-an-id', 404, sign({ scope: 'users:read' })],
    ['lookup without an assertion', lookup, 'GET', `/internal/users/${s.active.id}`, 401, null],
    ['lookup with a forged assertion', lookup, 'GET', `/internal/users/${s.active.id}`, 401,
      sign({ scope: 'users:read', keyRing: stranger })],
    ['lookup with the check scope', lookup, 'GET', `/internal/users/${s.active.id}`, 403, sign({ scope: 'credentials:check' })],
    ['search of an active user by name', byName, 'GET', `/internal/users?username=${encodeURIComponent(s.active.username)}`, 200,
      sign({ scope: 'users:read' })],
    ['search of an inactive user by name', byName, 'GET', `/internal/users?username=${encodeURIComponent(s.inactive.username)}`, 200,
      sign({ scope: 'users:read' })],
    ['search of an unknown name', byName, 'GET', '/internal/users?username=nobody-of-that-name', 404, sign({ scope: 'users:read' })],
    ['search without a name', byName, 'GET', '/internal/users', 400, sign({ scope: 'users:read' })],
    ['search without an assertion', byName, 'GET', `/internal/users?username=${encodeURIComponent(s.active.username)}`, 401, null],
    ['search with the check scope', byName, 'GET', `/internal/users?username=${encodeURIComponent(s.active.username)}`, 403,
      sign({ scope: 'credentials:check' })]
  ]
  if (s.factors === true) {
    const list = '/internal/users/{id}/factors'
    const one = '/internal/users/{id}/factors/{factor_id}'
    const mine = `/internal/users/${s.active.id}/factors`
    const record = JSON.stringify({ type: 'totp', status: 'active', created_at: '2026-01-01T00:00:00Z', data: 'v1.c2VhbGVk' })
    const write = (): Promise<string> => sign({ scope: 'factors:write' })
    scenarios.push(
      ['factors of a user without any', list, 'GET', mine, 200, sign({ scope: 'factors:read' })],
      ['factor stored', one, 'PUT', `${mine}/f1`, 200, write(), record],
      ['factors listed', list, 'GET', mine, 200, sign({ scope: 'factors:read' })],
      ['factor replaced', one, 'PUT', `${mine}/f1`, 200, write(), record],
      [
        'factor with an unknown type',
        one,
        'PUT',
        `${mine}/f2`,
        400,
        write(),
        JSON.stringify({ type: 'sms', status: 'active', created_at: '2026-01-01T00:00:00Z', data: 'x' })
      ],
      ['factor of an unknown user', one, 'PUT', '/internal/users/987654321/factors/f1', 404, write(), record],
      ['factor stored with the read scope', one, 'PUT', `${mine}/f1`, 403, sign({ scope: 'factors:read' }), record],
      ['factor stored without an assertion', one, 'PUT', `${mine}/f1`, 401, null, record],
      ['factors without an assertion', list, 'GET', mine, 401, null],
      ['factors with the lookup scope', list, 'GET', mine, 403, sign({ scope: 'users:read' })],
      ['factors of an unknown user', list, 'GET', '/internal/users/987654321/factors', 404, sign({ scope: 'factors:read' })],
      ['factor removed', one, 'DELETE', `${mine}/f1`, 204, write()],
      ['factor removed twice', one, 'DELETE', `${mine}/f1`, 404, write()],
      ['factor removed with the read scope', one, 'DELETE', `${mine}/f1`, 403, sign({ scope: 'factors:read' })],
      ['factor removed without an assertion', one, 'DELETE', `${mine}/f1`, 401, null]
    )
  }
  const results = []
  for (const [name, templatePath, method, path, expected, assertionPromise, body] of scenarios) {
    const headers: Record<string, string> = {}
    const assertion = assertionPromise === null ? null : await assertionPromise
    if (assertion !== null) headers['x-gateway-assertion'] = assertion
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(s.baseUrl + path, { method, headers, body, redirect: 'manual' })
    const text = await res.text()
    let parsed: unknown = text
    try { parsed = text === '' && res.status === 204 ? null : JSON.parse(text) } catch { /* not JSON: the schema check will say so */ }
    results.push({
      name,
      method,
      path,
      templatePath,
      expected,
      status: res.status,
      body: parsed,
      contentType: res.headers.get('content-type') ?? ''
    })
  }
  return results
}
