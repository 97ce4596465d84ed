/**
 * The factor records of the identity backend API (docs/identity-backend.md), in memory: the users
 * stub keeps what the gateway sends, as it is (the secret part is sealed by the gateway), per user.
 * For the gateway alone: `factors:read` to list, `factors:write` to create, replace and remove.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

export interface StoredFactor { id: string, type: string, status: string, created_at: string, data: string }

const FACTOR_ID = /^[A-Za-z0-9_-]{1,64}$/
const TYPES = new Set(['totp', 'webauthn', 'recovery_codes'])
const STATUSES = new Set(['pending', 'active'])
const MAX_DATA = 16 * 1024
const MAX_FACTORS = 20

const notFound = { type: 'about:blank', title: 'Not found', status: 404, code: 'not_found' }
const forbidden = { type: 'about:blank', title: 'Forbidden', status: 403, code: 'forbidden' }
const invalid = (detail: string) => ({ type: 'about:blank', title: 'Invalid request', status: 400, code: 'invalid_request', detail })

/** A PUT body, validated; a string says what is wrong. */
function parseFactor (id: string, body: unknown): StoredFactor | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body must be a JSON object'
  const { type, status, created_at: createdAt, data, ...rest } = body as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) return `unknown field ${JSON.stringify(unknown[0])} (allowed: type, status, created_at, data)`
  if (typeof type !== 'string' || !TYPES.has(type)) return 'type must be totp, webauthn or recovery_codes'
  if (typeof status !== 'string' || !STATUSES.has(status)) return 'status must be pending or active'
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) return 'created_at must be a date-time'
  if (typeof data !== 'string' || data.length === 0 || data.length > MAX_DATA) return `data must be a string of 1 to ${MAX_DATA} characters`
  return { id, type, status, created_at: createdAt, data }
}

export function registerFactorRoutes (app: FastifyInstance, userExists: (id: string) => boolean): Map<string, Map<string, StoredFactor>> {
  const byUser = new Map<string, Map<string, StoredFactor>>()
  const allowed = (request: FastifyRequest, reply: FastifyReply, scope: string): boolean => {
    if (request.caller?.scope === scope) return true
    void reply.code(403).send(forbidden)
    return false
  }

  app.get<{ Params: { id: string } }>('/internal/users/:id/factors', async (request, reply) => {
    if (!allowed(request, reply, 'factors:read')) return reply
    if (!userExists(request.params.id)) return reply.code(404).send(notFound)
    return { factors: [...(byUser.get(request.params.id)?.values() ?? [])] }
  })

  app.put<{ Params: { id: string, factorId: string }, Body: unknown }>('/internal/users/:id/factors/:factorId', async (request, reply) => {
    if (!allowed(request, reply, 'factors:write')) return reply
    const { id, factorId } = request.params
    if (!userExists(id)) return reply.code(404).send(notFound)
    if (!FACTOR_ID.test(factorId)) return reply.code(400).send(invalid('factor ids are 1-64 characters of A-Z a-z 0-9 _ -'))
    const factor = parseFactor(factorId, request.body)
    if (typeof factor === 'string') return reply.code(400).send(invalid(factor))
    const factors = byUser.get(id) ?? new Map<string, StoredFactor>()
    if (!factors.has(factorId)
      && factors.size >= MAX_FACTORS) return reply.code(400).send(invalid(`at most ${MAX_FACTORS} factors per user`))
    factors.set(factorId, factor)
    byUser.set(id, factors)
    return factor
  })

  app.delete<{ Params: { id: string, factorId: string } }>('/internal/users/:id/factors/:factorId', async (request, reply) => {
    if (!allowed(request, reply, 'factors:write')) return reply
    const { id, factorId } = request.params
    if (byUser.get(id)?.delete(factorId) !== true) return reply.code(404).send(notFound)
    return reply.code(204).send()
  })
  return byUser
}
