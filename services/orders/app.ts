/**
 * The orders stub service: each caller sees and creates only their own orders (in memory).
 * Every route but /healthz requires a gateway assertion.
 */
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import gatewayAssertion, { type AssertionOptions } from '../shared/gateway-assertion.js'
import { identityFromHeaders } from '../shared/identity-headers.js'
import { profileUsername, type DelegationOptions } from './user-profile.js'
import { addLiveOrders } from './live.js'

/**
 * `user_id` is the caller's `sub`: a user's id, or `client:<client_id>` for a machine client (which
 * also gets `client_id`). `username` is the user's profile as read through the gateway on their
 * behalf (user-profile.ts), when the service has client credentials for that.
 */
interface Order { id: string, user_id: string, user_name: string | null, username?: string | null, client_id?: string, item: string,
  quantity: number, created_at: string }

export interface OrdersOptions extends Omit<AssertionOptions, 'audience'> {
  /** Client credentials for token exchange: each user's order records their profile's username. */
  delegation?: DelegationOptions
}

const notFound = { type: 'about:blank', title: 'Not found', status: 404, code: 'not_found' }

export async function buildOrdersService (opts: OrdersOptions, logger: FastifyServerOptions['logger'] = false): Promise<FastifyInstance> {
  const app = Fastify({ logger })
  const orders = new Map<string, Order>()

  app.get('/healthz', async () => ({ status: 'ok' }))
  const { delegation, ...assertionOpts } = opts
  await app.register(gatewayAssertion, { ...assertionOpts, audience: 'orders' })
  addLiveOrders(app, { ...assertionOpts, audience: 'orders' })

  /** The caller's profile username through the gateway; null (and a warning) when it cannot be read. */
  async function delegatedUsername (request: FastifyRequest): Promise<string | null | undefined> {
    const assertion = request.headers['x-gateway-assertion']
    if (delegation === undefined || request.caller!.client_id !== undefined || typeof assertion !== 'string') return undefined
    const requestId = request.headers['x-request-id']
    try {
      return await profileUsername(delegation, assertion, typeof requestId === 'string' ? requestId : undefined)
    } catch (err) {
      request.log.warn({ err }, 'reading the caller\'s profile on their behalf failed')
      return null
    }
  }

  app.get('/api/orders', async (request) => ({
    orders: [...orders.values()].filter((o) => o.user_id === request.caller!.sub)
  }))

  app.post<{ Body: { item: string, quantity?: number } }>('/api/orders', {
    schema: {
      body: {
        type: 'object',
        required: ['item'],
        properties: { item: { type: 'string', minLength: 1, maxLength: 200 }, quantity: { type: 'integer', minimum: 1, maximum: 1000 } }
      }
    }
  }, async (request, reply) => {
    const username = await delegatedUsername(request)
    const order: Order = {
      id: randomUUID(),
      user_id: request.caller!.sub,
      // The gateway's X-User-Name, percent-encoded UTF-8, decoded.
      user_name: identityFromHeaders(request.headers).username ?? null,
      ...(request.caller!.client_id !== undefined ? { client_id: request.caller!.client_id } : {}),
      ...(username !== undefined ? { username } : {}),
      item: request.body.item,
      quantity: request.body.quantity ?? 1,
      created_at: new Date().toISOString()
    }
    orders.set(order.id, order)
    return reply.code(201).send(order)
  })

  app.get<{ Params: { id: string } }>('/api/orders/:id', async (request, reply) => {
    const order = orders.get(request.params.id)
    // Another user's order is indistinguishable from a missing one.
    if (order === undefined || order.user_id !== request.caller!.sub) return reply.code(404).send(notFound)
    return order
  })

  return app
}
