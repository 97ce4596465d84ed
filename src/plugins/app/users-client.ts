/**
 * The gateway's client of the identity backend (docs/identity-backend.md): the credential check and
 * the user lookup. Each call carries a gateway assertion (aud `users`, a `scope` naming the call)
 * so nothing else can use those endpoints, and the route table never exposes them.
 *
 * Only the documented answers mean something: 401 with code `invalid_credentials` is a wrong
 * password, 404 with code `not_found` an unknown user. Anything else (the backend refusing the
 * assertion, another status, a malformed body, no answer) is the backend's failure, never the
 * client's: a 502/504 with a security event, so it is never counted as a failed login.
 * No retries: a credential check is sent once (a retry would double the hashing work a guess
 * costs the backend) and the timeout is UPSTREAM_TIMEOUT_MS.
 * An https backend is verified against UPSTREAM_CA_FILE when set (as every upstream), else Node's roots.
 */
import fp from 'fastify-plugin'
import { Agent } from 'undici'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { GatewayError, type ErrorCode } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import type { Identity } from '../../tokens/token-service.js'
import { factorRecords, type FactorRecord } from '../../mfa/factor-record.js'

declare module 'fastify' {
  interface FastifyInstance {
    users: UsersClient
  }
}

/** A user as the identity backend describes it (`GET /internal/users/{id}`). */
export interface BackendUser {
  id: string
  username: string
  roles: string[]
  active: boolean
}

export interface UsersClient {
  /** The user's identity when the credentials are right and the user is active, else null. */
  checkCredentials: (username: string, password: string, requestId: string) => Promise<Identity | null>
  /** The user's current state, or null when the backend knows no such user. */
  lookupUser: (userId: string, requestId: string) => Promise<BackendUser | null>
  /** The user of that username (matched as the credential check matches it), or null. */
  findUser: (username: string, requestId: string) => Promise<BackendUser | null>
  /** The user's second-factor records (docs/identity-backend.md), or null when the backend knows no such user. */
  listFactors: (userId: string, requestId: string) => Promise<FactorRecord[] | null>
  /** Creates or replaces one factor record. */
  putFactor: (userId: string, record: FactorRecord, requestId: string) => Promise<void>
  /** Removes one factor record; false when there was none. */
  deleteFactor: (userId: string, factorId: string, requestId: string) => Promise<boolean>
}

export const CREDENTIALS_PATH = '/internal/credentials/check'
export const USER_PATH = '/internal/users/'
/** `GET /internal/users?username=NAME`: the user of a username (the dashboard's search). */
export const USERS_PATH = '/internal/users'

export type IdentityCall = 'credentials:check' | 'users:read' | 'factors:read' | 'factors:write'

/**
 * The identity backend failed a call. The client sees only the catalogue code (502 or 504); the
 * security event (logged by the hook below for the request that made the call) says why.
 */
export class IdentityBackendError extends GatewayError {
  constructor (
    code: Extract<ErrorCode, 'upstream_unavailable' | 'upstream_timeout'>,
    /** `identity_backend_refused`: it refused the gateway's assertion; `identity_backend_error`: anything else. */
    readonly event: 'identity_backend_refused' | 'identity_backend_error',
    readonly call: IdentityCall,
    readonly reason: string,
    readonly backendStatus?: number,
    cause?: unknown
  ) {
    super(code, `identity backend: ${reason}`, {}, cause)
  }
}

/** Bodies of error answers are read up to this size; a backend's error body is small. */
const MAX_ERROR_BODY = 16 * 1024

const ErrorBody = Type.Object({ code: Type.String() })
const IdentityBody = Type.Object({ id: Type.String({ minLength: 1 }), username: Type.String(), roles: Type.Array(Type.String()) })
const UserBody = Type.Object({ ...IdentityBody.properties, active: Type.Boolean() })
const errorBody = Compile(ErrorBody)
const identityBody = Compile(IdentityBody)
const userBody = Compile(UserBody)

/** The body as text when it is at most `limit` bytes; undefined (and the rest left unread) when longer. */
async function readUpTo (res: Response, limit: number): Promise<string | undefined> {
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      return undefined
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The `code` of a JSON (or problem+json) error body, or undefined. */
async function errorCode (res: Response): Promise<string | undefined> {
  try {
    const text = await readUpTo(res, MAX_ERROR_BODY)
    if (text === undefined) return undefined
    const body: unknown = JSON.parse(text)
    return errorBody.Check(body) ? body.code : undefined
  } catch {
    return undefined
  }
}

/** A 200 body, or undefined when it is not JSON. */
async function jsonBody (res: Response): Promise<unknown> {
  try {
    return await res.json()
  } catch {
    return undefined
  }
}

/** A 401/403 whose body does not say `invalid_credentials` is the backend refusing the gateway itself. */
async function unexpected (call: IdentityCall, res: Response): Promise<IdentityBackendError> {
  if (res.status === 401 || res.status === 403) {
    const code = await errorCode(res)
    return new IdentityBackendError('upstream_unavailable', 'identity_backend_refused', call,
      `refused the gateway's assertion (${res.status} ${code ?? 'without a code'})`, res.status)
  }
  await res.body?.cancel()
  return new IdentityBackendError('upstream_unavailable', 'identity_backend_error', call, `unexpected answer ${res.status}`, res.status)
}

export default fp(async (fastify) => {
  const url = new URL(CREDENTIALS_PATH, fastify.config.upstreams.users)
  const timeoutMs = fastify.config.upstreamTimeoutMs
  // The same trust as the proxied upstreams (src/proxy/upstream-pool.ts): UPSTREAM_CA_FILE's
  // certificates for an https backend, always verified; without it fetch's default (Node's roots).
  const ca = fastify.config.upstreamCa
  const dispatcher = ca === undefined ? undefined : new Agent({ connect: { rejectUnauthorized: true, ca: [...ca] } })
  if (dispatcher !== undefined) fastify.addHook('onClose', async () => { await dispatcher.close() })
  /** One call to the identity backend with an assertion naming its scope; network failures mapped to 502/504. */
  async function call (target: URL, scope: IdentityCall, requestId: string, init: { method: string, body?: string }): Promise<Response> {
    const assertion = await fastify.tokens.signAssertion('users', fastify.config.jwt.issuer, { scope })
    const headers: Record<string, string> = { 'x-gateway-assertion': assertion, 'x-request-id': requestId, accept: 'application/json' }
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    try {
      return await fetch(target, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs),
        ...(dispatcher !== undefined ? { dispatcher } : {}) })
    } catch (err) {
      const timedOut = (err as Error).name === 'TimeoutError'
      throw new IdentityBackendError(timedOut ? 'upstream_timeout' : 'upstream_unavailable', 'identity_backend_error', scope, timedOut
        ? 'timeout' : 'unreachable', undefined, err)
    }
  }

  /** `/internal/users/{id}/factors[/{factor_id}]`. */
  const factorsUrl = (userId: string, factorId?: string): URL =>
    new URL(
      `${USER_PATH}${encodeURIComponent(userId)}/factors${factorId !== undefined ? '/' + encodeURIComponent(factorId) : ''}`,
      fastify.config.upstreams.users
    )

  const users: UsersClient = {
    async checkCredentials (username, password, requestId) {
      const res = await call(url, 'credentials:check', requestId, { method: 'POST', body: JSON.stringify({ username, password }) })
      if (res.status === 401) {
        // Read before deciding: only this code is a failed login; any other 401 is the backend refusing us.
        const code = await errorCode(res)
        if (code === 'invalid_credentials') return null
        throw new IdentityBackendError('upstream_unavailable', 'identity_backend_refused', 'credentials:check',
          `refused the gateway's assertion (401 ${code ?? 'without a code'})`, 401)
      }
      if (res.status !== 200) throw await unexpected('credentials:check', res)
      const body = await jsonBody(res)
      if (!identityBody.Check(body)) throw new IdentityBackendError('upstream_unavailable', 'identity_backend_error', 'credentials:check',
        'malformed user', 200)
      return { userId: body.id, username: body.username, roles: body.roles }
    },

    async lookupUser (userId, requestId) {
      return await readUser(new URL(USER_PATH + encodeURIComponent(userId), fastify.config.upstreams.users), requestId)
    },

    async findUser (username, requestId) {
      const target = new URL(USERS_PATH, fastify.config.upstreams.users)
      target.searchParams.set('username', username)
      return await readUser(target, requestId)
    },

    async listFactors (userId, requestId) {
      const res = await call(factorsUrl(userId), 'factors:read', requestId, { method: 'GET' })
      if (res.status === 404) {
        if (await errorCode(res) === 'not_found') return null
        throw new IdentityBackendError(
          'upstream_unavailable',
          'identity_backend_error',
          'factors:read',
          'a 404 without code not_found',
          404
        )
      }
      if (res.status !== 200) throw await unexpected('factors:read', res)
      let body: unknown
      try { body = await res.json() } catch { body = undefined }
      const records = factorRecords(body)
      if (records === undefined) throw new IdentityBackendError(
        'upstream_unavailable',
        'identity_backend_error',
        'factors:read',
        'malformed factor list',
        200
      )
      return records
    },

    async putFactor (userId, record, requestId) {
      const { id, ...rest } = record
      const res = await call(factorsUrl(userId, id), 'factors:write', requestId, { method: 'PUT', body: JSON.stringify(rest) })
      if (res.status !== 200 && res.status !== 201 && res.status !== 204) throw await unexpected('factors:write', res)
      await res.body?.cancel()
    },

    async deleteFactor (userId, factorId, requestId) {
      const res = await call(factorsUrl(userId, factorId), 'factors:write', requestId, { method: 'DELETE' })
      if (res.status === 404 && await errorCode(res) === 'not_found') return false
      if (res.status !== 200 && res.status !== 204) throw await unexpected('factors:write', res)
      await res.body?.cancel()
      return true
    }
  }

  /** A `users:read` call answering one user or 404 `not_found`. */
  async function readUser (target: URL, requestId: string): Promise<BackendUser | null> {
    const res = await call(target, 'users:read', requestId, { method: 'GET' })
    if (res.status === 404) {
      // An unknown user only when the backend says so: a 404 of a server without this API must not read as "deleted".
      if (await errorCode(res) === 'not_found') return null
      throw new IdentityBackendError('upstream_unavailable', 'identity_backend_error', 'users:read', 'a 404 without code not_found', 404)
    }
    if (res.status !== 200) throw await unexpected('users:read', res)
    const body = await jsonBody(res)
    if (!userBody.Check(body)) throw new IdentityBackendError('upstream_unavailable', 'identity_backend_error', 'users:read',
      'malformed user', 200)
    return { id: body.id, username: body.username, roles: body.roles, active: body.active }
  }
  fastify.decorate('users', users)

  // The event is logged for the request that made the call (its ip and request id), whatever route it was.
  fastify.addHook('onError', async (request, _reply, error) => {
    if (!(error instanceof IdentityBackendError)) return
    securityEvent(request, error.event, {
      call: error.call,
      reason: error.reason,
      ...(error.backendStatus !== undefined ? { backend_status: error.backendStatus } : {})
    })
  })
}, { name: 'users-client', dependencies: ['config', 'token-service'] })
