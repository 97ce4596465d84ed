/**
 * WebSocket tickets: a browser cannot set headers on a WebSocket, so it trades its access token for
 * a ticket (POST /auth/ws-ticket) and opens the socket with `?ticket=...`. A ticket is random (256
 * bits), lives 30 seconds and works once: it is deleted when first presented, whatever the outcome.
 *
 * Redis keeps, under the ticket's SHA-256, the caller's access token sealed under a key derived
 * from the ticket itself (src/sessions/sealed-successor.ts), so neither a Redis dump nor the key
 * gives a usable token. The handshake then carries that access token through the proxy's one
 * decision like any other: the ticket is bound to the session the token belongs to.
 */
import { createHash, randomBytes } from 'node:crypto'
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import type { RedisClient } from '../lib/redis-client.js'
import { openSuccessor, sealSuccessor } from '../sessions/sealed-successor.js'

export const TICKET_TTL_SECONDS = 30 as const
/** The seal's salt: tickets' seals are never mistaken for a refresh successor's. */
const SEAL_SALT = 'ws-ticket'

const keyOf = (ticket: string): string => `gw:ws-ticket:${createHash('sha256').update(ticket).digest('base64url')}`

export class TicketStore {
  constructor (readonly redis: RedisClient) {}

  /** A new ticket for this access token. */
  async issue (accessToken: string): Promise<string> {
    const ticket = randomBytes(32).toString('base64url')
    await orStoreUnavailable(this.redis.set(keyOf(ticket), sealSuccessor(accessToken, ticket, SEAL_SALT), 'EX', TICKET_TTL_SECONDS))
    return ticket
  }

  /** The access token of a ticket, which is gone from now on; null for a used, expired or unknown one. */
  async take (ticket: string): Promise<string | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(ticket)) return null
    const sealed = await orStoreUnavailable<string | null>(this.redis.getdel(keyOf(ticket)))
    return sealed === null ? null : openSuccessor(sealed, ticket, SEAL_SALT)
  }
}
