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
  /** Marks one revoked access token of the client (POST /oauth/revoke) until the token expires. */
  revokedToken: (clientId: string, jti: string) => `gw:{c:${clientId}}:revoked:${jti}`,
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
  gwCheckClientToken: (record: string, counter: string, revoked: string, windowMs: number) => Promise<number[]>
  gwClientTokenLive: (record: string, revoked: string) => Promise<number>
}

/** KEYS[1] the client record, KEYS[2] the token's revocation mark: 1 while the client exists and the token is not revoked. */
const clientTokenLiveLua = `
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
return 0
`

export class ClientStore {
  readonly #redis: RedisClient & ClientCommands
  /** Told the client's id after it or one of its tokens was revoked (src/live/live-channel.ts). */
  onClientChange: ((clientId: string) => void) | null = null

  constructor (redis: RedisClient) {
    redis.defineCommand('gwCheckClient', { numberOfKeys: 2, lua: checkClientLua })
    redis.defineCommand('gwCheckClientToken', { numberOfKeys: 3, lua: checkClientLua })
    redis.defineCommand('gwClientTokenLive', { numberOfKeys: 2, lua: clientTokenLiveLua })
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
    if (record > 0) this.onClientChange?.(clientId)
    return record + entry > 0
  }

  /** Does the client exist (its tokens are live)? */
  async exists (clientId: string): Promise<boolean> {
    return await orStoreUnavailable(this.#redis.exists(clientKeys.record(clientId))) === 1
  }

  /** Is the client's access token live: the client registered and this token (jti) not revoked? */
  async isTokenLive (clientId: string, jti: string): Promise<boolean> {
    return await orStoreUnavailable(this.#redis.gwClientTokenLive(clientKeys.record(clientId), clientKeys.revokedToken(clientId, jti))) === 1
  }

  /** Revokes one access token of the client until it expires (`exp` in seconds). */
  async revokeToken (clientId: string, jti: string, exp: number): Promise<void> {
    await orStoreUnavailable(this.#redis.set(clientKeys.revokedToken(clientId, jti), '1', 'PXAT', Math.max(exp * 1000, Date.now() + 1000)))
    this.onClientChange?.(clientId)
  }

  /**
   * Is the client alive (and, with `jti`, that token of it not revoked), and (alive only) its
   * request counted in the window: one round trip.
   */
  async checkCounted (clientId: string, windowMs: number, jti?: string): Promise<ClientWindow> {
    const record = clientKeys.record(clientId)
    const counter = clientKeys.apiCounter(clientId)
    const [alive, count, ttlMs] = await orStoreUnavailable(jti === undefined
      ? this.#redis.gwCheckClient(record, counter, windowMs)
      : this.#redis.gwCheckClientToken(record, counter, clientKeys.revokedToken(clientId, jti), windowMs))
    return { alive: alive === 1, count: count ?? 0, ttlMs: ttlMs ?? 0 }
  }
}
