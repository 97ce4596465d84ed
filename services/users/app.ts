/**
 * The users stub service: owns the demo users, checks credentials for the gateway, and answers
 * the proxied /api/users routes. Every route but /healthz requires a gateway assertion.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { randomBytes } from 'node:crypto'
import { argon2id, argon2Verify } from 'hash-wasm'
import gatewayAssertion, { type AssertionOptions } from '../shared/gateway-assertion.js'
import { DEMO_USERS, DUMMY_HASH, type StoredUser } from './demo-users.js'
import { registerFactorRoutes, type StoredFactor } from './factors.js'

const profile = (u: StoredUser) => ({ id: u.id, username: u.username, roles: u.roles, active: u.active })

const notFound = { type: 'about:blank', title: 'Not found', status: 404, code: 'not_found' }
const invalidRequest = { title: 'Invalid request', status: 400, code: 'invalid_request' }
const invalid = (detail: string) => ({ type: 'about:blank', title: 'Invalid request', status: 400, code: 'invalid_request', detail })
const forbidden = { type: 'about:blank', title: 'Forbidden', status: 403, code: 'forbidden' }

/** Headers that tell the gateway about a change (see src/proxy/user-changes.ts); the gateway strips them. */
const STATE_CHANGED = 'x-user-state-changed'
const PASSWORD_CHANGED = 'x-user-password-changed'
const PASSWORD_REJECTED = 'x-user-password-rejected'

export const MIN_PASSWORD_LENGTH = 10
/** argon2 is fed at most this much (a long password must not become a denial of service). */
const MAX_PASSWORD_LENGTH = 1024
const ROLE = /^[A-Za-z0-9_.:-]{1,64}$/
const MAX_ROLES = 32

/** The same argon2id parameters as the seeded hashes (demo-users.ts: m=19 MiB, t=2, p=1). */
function hashPassword (password: string): Promise<string> {
  return argon2id({ password, salt: randomBytes(16), parallelism: 1, iterations: 2, memorySize: 19456, hashLength: 32,
    outputType: 'encoded' })
}

/** Changes a test makes directly in the users service (not through the gateway): no change header. */
export interface UserDirectory {
  get: (id: string) => Readonly<StoredUser> | undefined
  update: (id: string, change: { active?: boolean, roles?: string[] }) => void
  /** How many user lookups (`GET /internal/users/{id}`) this instance answered, per user id. */
  lookups: (id: string) => number
  /** The factor records kept for a user, as the gateway sent them. */
  factors: (id: string) => ReadonlyArray<Readonly<StoredFactor>>
}

const directories = new WeakMap<FastifyInstance, UserDirectory>()

/** The directory of a users service built here (tests change users through it, bypassing the gateway). */
export function directoryOf (app: FastifyInstance): UserDirectory {
  const directory = directories.get(app)
  if (directory === undefined) throw new Error('not a users service built by buildUsersService')
  return directory
}

/** A PATCH body, validated; a string says what is wrong. */
function parseChange (body: unknown): { active?: boolean, roles?: string[] } | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body must be a JSON object'
  const { active, roles, ...rest } = body as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) return `unknown field ${JSON.stringify(unknown[0])} (allowed: active, roles)`
  if (active === undefined && roles === undefined) return 'nothing to change: give active and/or roles'
  if (active !== undefined && typeof active !== 'boolean') return 'active must be a boolean'
  if (roles !== undefined) {
    if (!Array.isArray(roles)) return 'roles must be an array of strings'
    if (roles.length > MAX_ROLES) return `at most ${MAX_ROLES} roles`
    const bad = roles.find((r) => typeof r !== 'string' || !ROLE.test(r))
    if (bad !== undefined) return `invalid role ${JSON.stringify(bad)} (1-64 characters of A-Z a-z 0-9 _ . : -)`
    if (new Set(roles).size !== roles.length) return 'roles must not repeat'
  }
  return { ...(active !== undefined ? { active } : {}), ...(roles !== undefined ? { roles: [...roles as string[]] } : {}) }
}

/** Other argon2id hashes for the seeded users and for unknown users (tests): see `UsersServiceOptions.seedHashes`. */
export interface SeedHashes {
  /** By username; a demo user missing here keeps its seeded hash. */
  byUsername: Readonly<Record<string, string>>
  /** Verified for unknown users, so that they cost what a known user costs. */
  dummy: string
}

export interface UsersServiceOptions extends Omit<AssertionOptions, 'audience'> {
  /** Users served on top of the demo users of docs/identity-backend.md (tests). */
  extraUsers?: readonly StoredUser[]
  /**
   * Cheaper hashes of the same passwords (the in-process test harness, as Django's tests use a
   * fast hasher: hundreds of logins must not each cost 19 MiB of argon2id on a loaded CI machine).
   */
  seedHashes?: SeedHashes
}

export async function buildUsersService (opts: UsersServiceOptions,
  logger: FastifyServerOptions['logger'] = false): Promise<FastifyInstance> {
  const app = Fastify({ logger })
  const { extraUsers = [], seedHashes, ...assertion } = opts
  const dummyHash = seedHashes?.dummy ?? DUMMY_HASH
  // Each instance has its own copy: changes stay in it (tests build one per gateway).
  const all: StoredUser[] = [...DEMO_USERS, ...extraUsers].map((u) =>
    ({ ...u, roles: [...u.roles], passwordHash: seedHashes?.byUsername[u.username] ?? u.passwordHash }))
  const byName = new Map(all.map((u) => [u.username, u]))
  const byId = new Map(all.map((u) => [u.id, u]))
  const lookups = new Map<string, number>()
  const directory: UserDirectory = {
    get: (id) => byId.get(id),
    lookups: (id) => lookups.get(id) ?? 0,
    factors: (id) => [...(factorStore.get(id)?.values() ?? [])],
    update (id, change) {
      const user = byId.get(id)
      if (user === undefined) throw new Error(`no user ${id}`)
      if (change.active !== undefined) user.active = change.active
      if (change.roles !== undefined) user.roles = [...change.roles]
    }
  }

  app.get('/healthz', async () => ({ status: 'ok' }))
  // A body Fastify cannot parse is the documented 400 (docs/identity-backend.openapi.json), not Fastify's own shape.
  app.setErrorHandler<FastifyError>((err, _request, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? 400 : 500
    return reply.code(status).send(status === 400 ? invalidRequest
      : { title: 'Internal server error', status: 500, code: 'internal_error' })
  })
  await app.register(gatewayAssertion, { ...assertion, audience: 'users' })

  // Credential check, for the gateway alone (its assertion carries this scope). Not routed by the gateway.
  app.post<{ Body: { username?: unknown, password?: unknown } }>('/internal/credentials/check', async (request, reply) => {
    if (request.caller?.scope !== 'credentials:check') return reply.code(403).send({ title: 'Forbidden', status: 403, code: 'forbidden' })
    const { username, password } = request.body ?? {}
    if (typeof username !== 'string' || typeof password !== 'string') return reply.code(400).send(invalidRequest)
    const user = byName.get(username.trim().toLowerCase())
    // Unknown, inactive and wrong password cost the same argon2id verification (hash-wasm: WebAssembly, no native build)
    // and give the same answer.
    const ok = await argon2Verify({ password, hash: user?.passwordHash ?? dummyHash })
    if (user === undefined || !user.active || !ok) return reply.code(401).send(
      { title: 'Invalid credentials', status: 401, code: 'invalid_credentials' })
    return { id: user.id, username: user.username, roles: user.roles }
  })

  // User lookup, for the gateway alone (scope `users:read`): live user state and the simplejwt cut-over.
  app.get<{ Params: { id: string } }>('/internal/users/:id', async (request, reply) => {
    if (request.caller?.scope !== 'users:read') return reply.code(403).send({ title: 'Forbidden', status: 403, code: 'forbidden' })
    lookups.set(request.params.id, (lookups.get(request.params.id) ?? 0) + 1)
    const user = byId.get(request.params.id)
    return user === undefined ? reply.code(404).send(notFound) : profile(user)
  })

  // The user of a username, for the gateway alone (scope `users:read`): the dashboard's search by name.
  // Matched as the credential check matches it (trimmed, case-insensitive).
  app.get<{ Querystring: { username?: unknown } }>('/internal/users', async (request, reply) => {
    if (request.caller?.scope !== 'users:read') return reply.code(403).send({ title: 'Forbidden', status: 403, code: 'forbidden' })
    const { username } = request.query
    if (typeof username !== 'string' || username.trim() === '') return reply.code(400).send(invalid('username is required'))
    const user = byName.get(username.trim().toLowerCase())
    return user === undefined ? reply.code(404).send(notFound) : profile(user)
  })

  // Second-factor records, for the gateway alone (scopes `factors:read`, `factors:write`).
  const factorStore = registerFactorRoutes(app, (id) => byId.has(id))

  app.get('/api/users/me', async (request, reply) => {
    const user = byId.get(request.caller!.sub)
    return user === undefined ? reply.code(404).send(notFound) : profile(user)
  })

  app.get('/api/users', async () => ({ users: all.map(profile) }))

  // Any user changes their own password; a wrong current password is marked for the gateway,
  // which counts it like a failed login.
  app.post<{ Body: unknown }>('/api/users/me/password', async (request, reply) => {
    const user = byId.get(request.caller!.sub)
    if (user === undefined) return reply.code(404).send(notFound)
    const body = request.body
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return reply.code(400).send(
      invalid('the body must be a JSON object'))
    const { current_password: current, new_password: next } = body as Record<string, unknown>
    if (typeof current !== 'string' || typeof next !== 'string') return reply.code(400).send(
      invalid('current_password and new_password are required strings'))
    if (current.length > MAX_PASSWORD_LENGTH || next.length > MAX_PASSWORD_LENGTH) return reply.code(400).send(
      invalid(`passwords are at most ${MAX_PASSWORD_LENGTH} characters`))
    if ([...next].length < MIN_PASSWORD_LENGTH) return reply.code(400).send(
      invalid(`new_password must have at least ${MIN_PASSWORD_LENGTH} characters`))
    if (!await argon2Verify({ password: current, hash: user.passwordHash })) {
      return reply.code(400).header(PASSWORD_REJECTED, user.id)
        .send({ type: 'about:blank', title: 'Invalid request', status: 400, code: 'invalid_current_password',
          detail: 'current_password is wrong' })
    }
    user.passwordHash = await hashPassword(next)
    return reply.code(204).header(PASSWORD_CHANGED, user.id).send()
  })

  // An admin changes a user's active flag and roles.
  app.patch<{ Params: { id: string }, Body: unknown }>('/api/users/:id', async (request, reply) => {
    if (!request.caller!.roles.includes('admin')) return reply.code(403).send(forbidden)
    const change = parseChange(request.body)
    if (typeof change === 'string') return reply.code(400).send(invalid(change))
    const user = byId.get(request.params.id)
    if (user === undefined) return reply.code(404).send(notFound)
    directory.update(user.id, change)
    return reply.header(STATE_CHANGED, user.id).send(profile(user))
  })

  app.get<{ Params: { id: string } }>('/api/users/:id', async (request, reply) => {
    const user = byId.get(request.params.id)
    return user === undefined ? reply.code(404).send(notFound) : profile(user)
  })

  directories.set(app, directory)
  return app
}
