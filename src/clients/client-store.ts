/**
 * The registry of machine clients (docs/machine-clients.md) in Redis, shared by every replica.
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
import { defineScripts, type RedisClient } from '../lib/redis-client.js'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { SessionCache } from '../sessions/session-cache.js'
import type { LocalState } from '../sessions/session-store.js'
import { checkClientLua } from './scripts/check-client.js'
import { PROOF_REPLAYED, withProofJti, type ProofJtiClaim } from '../dpop/proof-jti.js'

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
  /** The client gets tokens only with a DPoP proof (docs/dpop.md). */
  dpop_bound: boolean
}

/** What the token endpoint needs to authenticate a client. */
export interface ClientCredentialsRecord { secretDigest: string, scopes: string[], dpopBound: boolean }

/** `replayed`: the DPoP proof's jti was seen before (nothing else was checked then). */
export interface ClientWindow { alive: boolean, count: number, ttlMs: number, replayed?: boolean }

interface ClientCommands {
  gwCheckClient: (record: string, counter: string, windowMs: number) => Promise<number[]>
  gwCheckClientToken: (record: string, counter: string, revoked: string, windowMs: number) => Promise<number[]>
  gwClientTokenLive: (record: string, revoked: string) => Promise<number>
  gwCheckClientTokenProof: (
    record: string,
    counter: string,
    revoked: string,
    jti: string,
    windowMs: number,
    jtiTtlMs: number
  ) => Promise<number[]>
}

/** KEYS[1] the client record, KEYS[2] the token's revocation mark: 1 while the client exists and the token is not revoked. */
const clientTokenLiveLua = `
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
return 0
`

const CLIENT_SCRIPTS = {
  gwCheckClient: { numberOfKeys: 2, lua: checkClientLua },
  gwCheckClientToken: { numberOfKeys: 3, lua: checkClientLua },
  gwClientTokenLive: { numberOfKeys: 2, lua: clientTokenLiveLua },
  // With a DPoP proof's jti claimed first (src/dpop/proof-jti.ts).
  gwCheckClientTokenProof: { numberOfKeys: 4, lua: withProofJti(checkClientLua) }
}

export class ClientStore {
  readonly #redis: RedisClient & ClientCommands
  readonly #local: LocalState | undefined
  readonly #tracked: (RedisClient & ClientCommands) | undefined
  /** Told the client's id after it or one of its tokens was revoked (src/live/live-channel.ts). */
  onClientChange: ((clientId: string) => void) | null = null

  /**
   * With `local` (SESSION_CACHE=on), a token's liveness is cached per replica as sessions are
   * (src/sessions/session-cache.ts: entries keyed by the token's revocation mark, grouped by the
   * client record) and the per-client counter is batched (src/limits/batched-window-counter.ts).
   */
  constructor (redis: RedisClient, local?: LocalState) {
    this.#redis = defineScripts<ClientCommands>(redis, CLIENT_SCRIPTS)
    this.#local = local
    const tracked = local?.cache?.tracker.data
    if (tracked !== undefined) this.#tracked = defineScripts<ClientCommands>(tracked, CLIENT_SCRIPTS)
  }

  /** After a deletion or revocation, before it is answered: see SessionStore's #invalidationsSent. */
  async #invalidationsSent (clientId: string): Promise<void> {
    const cache = this.#local?.cache
    if (cache === undefined) return
    await orStoreUnavailable(cache.tracker.settle(this.#redis, clientKeys.record(clientId)))
  }

  /** Token liveness from the replica's cache, else from Redis (cached when the read was tracked). */
  async #liveCached (clientId: string, jti: string, cache: SessionCache | undefined): Promise<boolean> {
    const record = clientKeys.record(clientId)
    const revoked = clientKeys.revokedToken(clientId, jti)
    if (cache !== undefined && cache.get(revoked) !== undefined) {
      await nextTurn()
      const hit = cache.get(revoked)
      if (hit !== undefined) { cache.stats.hits++; return hit.alive }
    }
    if (cache !== undefined) cache.stats.misses++
    const placeholder = cache?.reserve(revoked, record)
    const client = placeholder !== undefined && this.#tracked !== undefined ? this.#tracked : this.#redis
    let live: number
    try {
      live = await orStoreUnavailable(client.gwClientTokenLive(record, revoked))
    } catch (err) {
      if (placeholder !== undefined) cache?.release(revoked, placeholder)
      throw err
    }
    if (placeholder !== undefined) cache?.fill(revoked, placeholder, { alive: live === 1, roles: '', checked: null })
    return live === 1
  }

  async create (client: ClientInfo, secretDigest: string): Promise<void> {
    const { client_id: id, name, scopes, created_at: createdAt, dpop_bound: dpopBound } = client
    await orStoreUnavailable(Promise.all([
      this.#redis.hset(clientKeys.index, id, JSON.stringify({ name, scopes, created_at: createdAt, dpop_bound: dpopBound })),
      this.#redis.hset(
        clientKeys.record(id),
        'secret',
        secretDigest,
        'scopes',
        JSON.stringify(scopes),
        'name',
        name,
        'created',
        createdAt,
        'dpop',
        dpopBound ? '1' : '0'
      )
    ]))
  }

  /** Every registered client, oldest first; no secret. */
  async list (): Promise<ClientInfo[]> {
    const entries = await orStoreUnavailable(this.#redis.hgetall(clientKeys.index))
    return Object.entries(entries)
      // Clients registered before DPoP have no dpop_bound: they are not bound.
      .map(([id, json]) => {
        const entry = JSON.parse(json) as Omit<ClientInfo, 'client_id' | 'dpop_bound'> & { dpop_bound?: boolean }
        return { client_id: id, ...entry, dpop_bound: entry.dpop_bound === true }
      })
      .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.client_id.localeCompare(b.client_id))
  }

  /** The client's secret digest and scopes, or null for an unknown (or deleted) client. */
  async credentials (clientId: string): Promise<ClientCredentialsRecord | null> {
    const [secret, scopes, dpop] = await orStoreUnavailable(this.#redis.hmget(clientKeys.record(clientId), 'secret', 'scopes', 'dpop'))
    if (typeof secret !== 'string' || typeof scopes !== 'string') return null
    return { secretDigest: secret, scopes: JSON.parse(scopes) as string[], dpopBound: dpop === '1' }
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
    await this.#invalidationsSent(clientId)
    return record + entry > 0
  }

  /** Does the client exist (its tokens are live)? */
  async exists (clientId: string): Promise<boolean> {
    return await orStoreUnavailable(this.#redis.exists(clientKeys.record(clientId))) === 1
  }

  /** Is the client's access token live: the client registered and this token (jti) not revoked? */
  async isTokenLive (clientId: string, jti: string): Promise<boolean> {
    if (this.#local !== undefined) return this.#liveCached(clientId, jti, this.#local.cache)
    return await orStoreUnavailable(this.#redis.gwClientTokenLive(
      clientKeys.record(clientId),
      clientKeys.revokedToken(clientId, jti)
    )) === 1
  }

  /** Revokes one access token of the client until it expires (`exp` in seconds). */
  async revokeToken (clientId: string, jti: string, exp: number): Promise<void> {
    await orStoreUnavailable(this.#redis.set(clientKeys.revokedToken(clientId, jti), '1', 'PXAT', Math.max(exp * 1000, Date.now() + 1000)))
    this.onClientChange?.(clientId)
    await this.#invalidationsSent(clientId)
  }

  /**
   * Is the client alive (and, with `jti`, that token of it not revoked), and (alive only) its
   * request counted in the window: one round trip.
   */
  async checkCounted (clientId: string, windowMs: number, jti?: string, proofJti?: ProofJtiClaim): Promise<ClientWindow> {
    const local = this.#local
    // A DPoP proof's jti must be unique across replicas: such a request keeps its one round trip.
    if (local !== undefined && jti !== undefined && proofJti === undefined) {
      if (!await this.#liveCached(clientId, jti, local.cache)) return { alive: false, count: 0, ttlMs: 0 }
      const view = await local.counter.hit(clientKeys.apiCounter(clientId), local.apiLimit)
      return { alive: true, count: view.count, ttlMs: view.ttlMs }
    }
    const record = clientKeys.record(clientId)
    const counter = clientKeys.apiCounter(clientId)
    const [alive, count, ttlMs] = await orStoreUnavailable(jti === undefined
      ? this.#redis.gwCheckClient(record, counter, windowMs)
      : proofJti !== undefined
        ? this.#redis.gwCheckClientTokenProof(
          record,
          counter,
          clientKeys.revokedToken(clientId, jti),
          proofJti.key,
          windowMs,
          proofJti.ttlMs
        )
        : this.#redis.gwCheckClientToken(record, counter, clientKeys.revokedToken(clientId, jti), windowMs))
    if (alive === PROOF_REPLAYED) return { alive: false, count: 0, ttlMs: 0, replayed: true }
    return { alive: alive === 1, count: count ?? 0, ttlMs: ttlMs ?? 0 }
  }
}
