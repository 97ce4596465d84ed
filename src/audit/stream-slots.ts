/**
 * At most a few open audit event streams per admin session, counted across replicas: each open
 * stream holds a slot (a member of a sorted set scored by when it was last renewed). A stream
 * renews its slot while it runs and gives it back when it ends; a slot of a replica that died is
 * dropped once it has not been renewed for STALE_MS. The key carries the user's hash tag.
 */
import { randomUUID } from 'node:crypto'
import { defineScripts, type RedisClient } from '../lib/redis-client.js'
import { orStoreUnavailable } from '../lib/store-unavailable.js'

const slotsKey = (userId: string, sessionId: string): string => `gw:{u:${userId}}:streams:${sessionId}`

/** KEYS[1] the session's slots. ARGV[1] now (ms), ARGV[2] stale after (ms), ARGV[3] max, ARGV[4] slot id. 1 when taken. */
const takeSlotLua = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

interface SlotCommands {
  gwTakeStreamSlot: (key: string, now: number, staleMs: number, max: number, id: string) => Promise<number>
}

export interface StreamSlot {
  /** Keeps the slot (call it more often than every STALE_MS). */
  renew: () => Promise<void>
  release: () => Promise<void>
}

export class StreamSlots {
  static readonly STALE_MS = 30_000
  readonly #redis: RedisClient & SlotCommands

  constructor (redis: RedisClient, readonly max: number) {
    this.#redis = defineScripts<SlotCommands>(redis, {
      gwTakeStreamSlot: { numberOfKeys: 1, lua: takeSlotLua }
    })
  }

  /** A slot of the session, or null when all are taken; 503 when Redis is away. */
  async take (userId: string, sessionId: string): Promise<StreamSlot | null> {
    const key = slotsKey(userId, sessionId)
    const id = randomUUID()
    const taken = await orStoreUnavailable(this.#redis.gwTakeStreamSlot(key, Date.now(), StreamSlots.STALE_MS, this.max, id))
    if (taken !== 1) return null
    return {
      renew: async () => {
        await this.#redis.multi().zadd(key, 'XX', Date.now(), id).pexpire(key, StreamSlots.STALE_MS).exec()
      },
      release: async () => { await this.#redis.zrem(key, id) }
    }
  }
}
