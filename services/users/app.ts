/**
 * The users stub service: owns the demo users, checks credentials for the gateway, and answers
 * the proxied /api/users routes. Every route but /healthz requires a gateway assertion.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { argon2Verify } from 'hash-wasm'
import gatewayAssertion, { type AssertionOptions } from '../shared/gateway-assertion.js'
import { DEMO_USERS, DUMMY_HASH, type StoredUser } from './demo-users.js'

const profile = (u: StoredUser) => ({ id: u.id, username: u.username, roles: u.roles, active: u.active })

const notFound = { type: 'about:blank', title: 'Not found', status: 404, code: 'not_found' }
const invalidRequest = { title: 'Invalid request', status: 400, code: 'invalid_request' }

export interface UsersServiceOptions extends Omit<AssertionOptions, 'audience'> {
  /** Users served on top of the demo users of contract section 3 (tests). */
  extraUsers?: readonly StoredUser[]
}

export async function buildUsersService (opts: UsersServiceOptions, logger: FastifyServerOptions['logger'] = false): Promise<FastifyInstance> {
  const app = Fastify({ logger })
  const { extraUsers = [], ...assertion } = opts
  const allUsers = [...DEMO_USERS, ...extraUsers]
  const byName = new Map(allUsers.map((u) => [u.username, u]))
  const byId = new Map(allUsers.map((u) => [u.id, u]))

  app.get('/healthz', async () => ({ status: 'ok' }))
  // A body Fastify cannot parse is the documented 400 (docs/identity-backend.openapi.json), not Fastify's own shape.
  app.setErrorHandler<FastifyError>((err, _request, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? 400 : 500
    return reply.code(status).send(status === 400 ? invalidRequest : { title: 'Internal server error', status: 500, code: 'internal_error' })
  })
  await app.register(gatewayAssertion, { ...assertion, audience: 'users' })

  // Credential check, for the gateway alone (its assertion carries this scope). Not routed by the gateway.
  app.post<{ Body: { username?: unknown, password?: unknown } }>('/internal/credentials/check', async (request, reply) => {
    if (request.caller?.scope !== 'credentials:check') return reply.code(403).send({ title: 'Forbidden', status: 403, code: 'forbidden' })
    const { username, password } = request.body ?? {}
    if (typeof username !== 'string' || typeof password !== 'string') return reply.code(400).send(invalidRequest)
    const user = byName.get(username.trim().toLowerCase())
    // Unknown, inactive and wrong password cost the same argon2id verification (hash-wasm: WebAssembly, no native build) and give the same answer.
    const ok = await argon2Verify({ password, hash: user?.passwordHash ?? DUMMY_HASH })
    if (user === undefined || !user.active || !ok) return reply.code(401).send({ title: 'Invalid credentials', status: 401, code: 'invalid_credentials' })
    return { id: user.id, username: user.username, roles: user.roles }
  })

  // User lookup, for the gateway alone (scope `users:read`): live user state and the simplejwt cut-over.
  app.get<{ Params: { id: string } }>('/internal/users/:id', async (request, reply) => {
    if (request.caller?.scope !== 'users:read') return reply.code(403).send({ title: 'Forbidden', status: 403, code: 'forbidden' })
    const user = byId.get(request.params.id)
    return user === undefined ? reply.code(404).send(notFound) : profile(user)
  })

  app.get('/api/users/me', async (request, reply) => {
    const user = byId.get(request.caller!.sub)
    return user === undefined ? reply.code(404).send(notFound) : profile(user)
  })

  app.get('/api/users', async () => ({ users: allUsers.map(profile) }))

  app.get<{ Params: { id: string } }>('/api/users/:id', async (request, reply) => {
    const user = byId.get(request.params.id)
    return user === undefined ? reply.code(404).send(notFound) : profile(user)
  })

  return app
}
