/**
 * Credential-stuffing block and the list of active blocks (docs/abuse-protection.md, docs/audit-and-dashboard.md).
 *
 * A client IP whose failed logins name STUFFING_USERNAMES distinct usernames within 10 minutes is
 * refused at login for IP_BLOCK_SECONDS. The distinct usernames are kept as hashes in a sorted set
 * per IP (scored by time); counting and blocking is one atomic script, so replicas share it and
 * parallel failures cannot overshoot. The per-(username, IP) lockout of login-lockout.ts is
 * unchanged: this module only records, next to a lock, what the dashboard shows (the normalized
 * username that was locked, the IP, until when) in one index hash, never a password or token.
 */
import { createHash } from 'node:crypto'
import { normalizeUsername } from './login-lockout.js'
import { orStoreUnavailable } from '../lib/store-unavailable.js'
import { defineScripts, type RedisClient } from '../lib/redis-client.js'

export const STUFFING_WINDOW_MS = 10 * 60_000
/** The index of blocks: field = block id, value = JSON of an ActiveBlock. Pruned on read. */
export const BLOCK_INDEX = 'gw:blocks'

const digest = (text: string): string => createHash('sha256').update(text).digest('base64url').slice(0, 22)
const stuffingKey = (d: string): string => `gw:stuffing:{${d}}`
const ipBlockKey = (d: string): string => `gw:ipblock:{${d}}`
const lockoutKey = (d: string): string => `gw:lockout:{${d}}`

/**
 * KEYS[1] the IP's sorted set of failed usernames, KEYS[2] the IP's block. ARGV[1] now (ms),
 * ARGV[2] window (ms), ARGV[3] username hash, ARGV[4] threshold, ARGV[5] block seconds.
 * Returns {1, distinct} when this failure blocked the IP, else {0, distinct}.
 */
export const recordFailureLua = `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[4]) and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], n, 'EX', ARGV[5])
  redis.call('DEL', KEYS[1])
  return {1, n}
end
return {0, n}
`

interface BlockCommands {
  gwStuffingFailure: (zset: string, block: string, now: number, windowMs: number, user: string, threshold: number,
    seconds: number) => Promise<[number, number]>
}

export interface ActiveBlock {
  id: string
  kind: 'account' | 'ip'
  ip: string
  username?: string
  until: string
  failures: number
}

export class BlockList {
  readonly #redis: RedisClient & BlockCommands

  constructor (redis: RedisClient, readonly distinctUsernames: number, readonly blockSeconds: number, readonly lockoutSeconds: number) {
    this.#redis = defineScripts<BlockCommands>(redis, {
      gwStuffingFailure: { numberOfKeys: 2, lua: recordFailureLua }
    })
  }

  /** Seconds the IP stays blocked, or 0. */
  async ipBlockedFor (ipBucket: string): Promise<number> {
    const ms = await orStoreUnavailable(this.#redis.pttl(ipBlockKey(digest(ipBucket))))
    return ms > 0 ? Math.ceil(ms / 1000) : 0
  }

  /** Counts a failed login; returns the block when this failure blocked the IP. */
  async recordFailure (username: string, ipBucket: string, nowMs = Date.now()): Promise<ActiveBlock | null> {
    const d = digest(ipBucket)
    const [blocked, distinct] = await orStoreUnavailable(this.#redis.gwStuffingFailure(
      stuffingKey(d), ipBlockKey(d), nowMs, STUFFING_WINDOW_MS, digest(normalizeUsername(username)), this.distinctUsernames,
        this.blockSeconds))
    if (blocked !== 1) return null
    const block: ActiveBlock = { id: `ip.${d}`, kind: 'ip', ip: ipBucket, until: new Date(nowMs + this.blockSeconds * 1000).toISOString(),
      failures: distinct }
    await this.#index(block)
    return block
  }

  /** Records a lock of login-lockout.ts (its key) for the list; returns the block. */
  async recordAccountLock (lockKey: string, username: string, ipBucket: string, failures: number,
    nowMs = Date.now()): Promise<ActiveBlock> {
    const d = /\{([^}]+)\}/.exec(lockKey)?.[1] ?? digest(lockKey)
    const block: ActiveBlock = {
      id: `account.${d}`, kind: 'account', ip: ipBucket, username: normalizeUsername(username),
      until: new Date(nowMs + this.lockoutSeconds * 1000).toISOString(), failures
    }
    await this.#index(block)
    return block
  }

  async #index (block: ActiveBlock): Promise<void> {
    const ttl = Math.max(this.blockSeconds, this.lockoutSeconds)
    await orStoreUnavailable(this.#redis.multi().hset(BLOCK_INDEX, block.id, JSON.stringify(block)).expire(BLOCK_INDEX, ttl).exec())
  }

  /** Active blocks, soonest to end first; ended ones are dropped from the index. */
  async list (nowMs = Date.now()): Promise<ActiveBlock[]> {
    const all = await orStoreUnavailable(this.#redis.hgetall(BLOCK_INDEX))
    const active: ActiveBlock[] = []
    const ended: string[] = []
    for (const [id, json] of Object.entries(all)) {
      const block = JSON.parse(json) as ActiveBlock
      if (Date.parse(block.until) > nowMs) active.push(block)
      else ended.push(id)
    }
    if (ended.length > 0) void this.#redis.hdel(BLOCK_INDEX, ...ended).catch(() => { /* pruned next time */ })
    return active.sort((a, b) => a.until.localeCompare(b.until))
  }

  /** Lifts a block; false when there is no such active block. */
  async lift (id: string): Promise<ActiveBlock | null> {
    const match = /^(account|ip)\.([\w-]{22})$/.exec(id)
    if (match === null) return null
    const [, kind, d] = match as unknown as [string, 'account' | 'ip', string]
    const keys = kind === 'account' ? [lockoutKey(d)] : [ipBlockKey(d), stuffingKey(d)]
    // Different slots on a cluster: sent together (auto-pipelined), not as one transaction.
    const [json, deleted] = await orStoreUnavailable(Promise.all([
      this.#redis.hget(BLOCK_INDEX, id),
      Promise.all(keys.map((k) => this.#redis.del(k))).then((n) => n.reduce((a, b) => a + b, 0)),
      this.#redis.hdel(BLOCK_INDEX, id)
    ]))
    if (json === null && deleted === 0) return null
    return json !== null ? JSON.parse(json) as ActiveBlock : { id, kind, ip: '', until: new Date().toISOString(), failures: 0 }
  }
}
