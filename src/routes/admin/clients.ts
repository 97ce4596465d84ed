/** Machine clients, managed by admins (docs/machine-clients.md): create (the secret is shown once), list, delete. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { NoContent, problems } from '../../schemas.js'
import { Id } from '../../tokens/claims.js'
import { newId } from '../../tokens/token-service.js'
import { newClientSecret, secretDigest } from '../../clients/client-secret.js'
import { RESERVED_SCOPES } from '../../clients/scopes.js'
import { ClientListSchema, CreateClientBodySchema, CreatedClientSchema } from '../../clients/client-schemas.js'
import { adminOnly } from './admin-only.js'

const isId = Compile(Id)

const adminClients: FastifyPluginAsyncTypebox = async (fastify) => {
  const admin = { tags: ['admin'], security: [{ bearer: [] }] }
  const preHandler = adminOnly(fastify)

  fastify.post('/admin/clients', {
    preHandler,
    schema: {
      ...admin,
      summary: 'Register a machine client (role admin); the secret is in this answer only',
      description: `The identity backend's scopes (${[...RESERVED_SCOPES].join(', ')}) are reserved for the gateway's own calls: ` +
        'a body naming one is 400 `invalid_request`.',
      body: CreateClientBodySchema,
      response: { 201: CreatedClientSchema, ...problems(400, 401, 403, 429, 503) }
    }
  }, async (request, reply) => {
    const reserved = request.body.scopes.filter((scope) => RESERVED_SCOPES.has(scope))
    if (reserved.length > 0) throw gatewayError('invalid_request',
      `reserved for the gateway's own identity-backend calls: ${reserved.join(', ')}`)
    const clientId = newId()
    const secret = newClientSecret()
    const client = {
      client_id: clientId,
      name: request.body.name,
      scopes: request.body.scopes,
      created_at: new Date().toISOString(),
      dpop_bound: request.body.dpop_bound === true
    }
    await fastify.clients.create(client, secretDigest(clientId, secret))
    securityEvent(request, 'client_created', { user_id: request.auth!.sub, client_id: clientId, scopes: client.scopes })
    return reply.code(201).send({ ...client, client_secret: secret })
  })

  fastify.get('/admin/clients', {
    preHandler,
    schema: {
      ...admin,
      summary: 'List machine clients, without secrets (role admin)',
      response: { 200: ClientListSchema, ...problems(401, 403, 429, 503) }
    }
  }, async () => ({ clients: await fastify.clients.list() }))

  fastify.delete('/admin/clients/:client_id', {
    preHandler,
    schema: {
      ...admin,
      summary: 'Delete a machine client: its tokens are refused from the next request on (role admin)',
      params: Type.Object({ client_id: Type.String({ maxLength: 128 }) }),
      response: { 204: NoContent, ...problems(401, 403, 404, 429, 503) }
    }
  }, async (request, reply) => {
    const clientId = request.params.client_id
    if (!isId.Check(clientId) || !await fastify.clients.delete(clientId)) throw gatewayError('not_found', 'no such client')
    securityEvent(request, 'client_revoked', { user_id: request.auth!.sub, client_id: clientId })
    return reply.code(204).send(null)
  })
}

export default adminClients
