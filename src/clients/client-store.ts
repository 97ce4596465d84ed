/**
 * The registry of machine clients (contract 13) in Redis, shared by every replica.
 *
 * Keys of one client carry the hash tag `{c:<clientId>}` (one Redis Cluster slot): its record
 * (`gw:{c:<id>}:client`, a hash with the secret's digest, scopes, name, creation time) and its
 * per-client rate-limit counter. The hot-path check of a client token is one script on that slot
 * (record alive + counter), so deleting the record refuses every token of the client from the
 * next request on, on every replica.
 *
 * The list for `GET /admin/clients` is one more key, `gw:{clients}:index` (a hash of client id ->
 * public metadata, never the secret). It lives in its own slot, so it cannot change atomically with
 * a record in Redis Cluster: both are written in the same round trip (auto-pipelined, in parallel
 * on a cluster), and a crash in between leaves at worst an index entry without a record (listed,
 * refused at the token endpoint, removed by DELETE) or a record without an entry (usable, deletable
 * by id). Records are configuration, not state: they carry no TTL; counters do.
 */
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import type { RedisClient } from '../sessions/session-store.js'
import { checkClientLua } from './scripts/check-client.js'

export const clientKeys = {
  record: (clientId: string) => `gw:{c:${clientId}}:client`,
  /** Fixed-window counter of the client's proxied requests and token requests. */
  apiCounter: (clientId: string) => `gw:{c:${clientId}}:rl:api`,
  index: 'gw:{clients}:index'
}

export interface ClientInfo {
  client_id: string
  name: string
  scopes: string[]
  created_at: string
}

/** What the token endpoint needs to authenticate a client. */
export interface ClientCredentialsRecord { secretDigest: string, scopes: string[] }

export interface ClientWindow { alive: boolean, count: number, ttlMs: number }

interface ClientCommands {
  gwCheckClient: (record: string, counter: string, windowMs: number) => Promise<number[]>
}

export class ClientStore {
  readonly #redis: RedisClient & ClientCommands

  constructor (redis: RedisClient) {
    redis.defineCommand('gwCheckClient', { numberOfKeys: 2, lua: checkClientLua })
    this.#redis = redis as RedisClient & ClientCommands
  }

  async create (client: ClientInfo, secretDigest: string): Promise<void> {
    const { client_id: id, name, scopes, created_at: createdAt } = client
    await orStoreUnavailable(Promise.all([
      this.#redis.hset(clientKeys.index, id, JSON.stringify({ name, scopes, created_at: createdAt })),
      this.#redis.hset(clientKeys.record(id), 'secret', secretDigest, 'scopes', JSON.stringify(scopes), 'name', name, 'created', createdAt)
    ]))
  }

  /** Every registered client, oldest first; no secret. */
  async list (): Promise<ClientInfo[]> {
    const entries = await orStoreUnavailable(this.#redis.hgetall(clientKeys.index))
    return Object.entries(entries)
      .map(([id, json]) => ({ client_id: id, ...JSON.parse(json) as Omit<ClientInfo, 'client_id'> }))
      .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.client_id.localeCompare(b.client_id))
  }

  /** The client's secret digest and scopes, or null for an unknown (or deleted) client. */
  async credentials (clientId: string): Promise<ClientCredentialsRecord | null> {
    const [secret, scopes] = await orStoreUnavailable(this.#redis.hmget(clientKeys.record(clientId), 'secret', 'scopes'))
    if (typeof secret !== 'string' || typeof scopes !== 'string') return null
    return { secretDigest: secret, scopes: JSON.parse(scopes) as string[] }
  }

  /**
   * Deletes the client: its record (so every token it holds is refused from the next request on)
   * and its index entry. False when there was no such client.
   */
  async delete (clientId: string): Promise<boolean> {
    const [record, entry] = await orStoreUnavailable(Promise.all([
      this.#redis.del(clientKeys.record(clientId)),
      this.#redis.hdel(clientKeys.index, clientId)
    ]))
    return record + entry > 0
  }

  /** Does the client exist (its tokens are live)? */
  async exists (clientId: string): Promise<boolean> {
    return await orStoreUnavailable(this.#redis.exists(clientKeys.record(clientId))) === 1
  }

  /** Is the client alive, and (alive only) its request counted in the window: one round trip. */
  async checkCounted (clientId: string, windowMs: number): Promise<ClientWindow> {
    const [alive, count, ttlMs] = await orStoreUnavailable(this.#redis.gwCheckClient(clientKeys.record(clientId), clientKeys.apiCounter(clientId), windowMs))
    return { alive: alive === 1, count: count ?? 0, ttlMs: ttlMs ?? 0 }
  }
}
