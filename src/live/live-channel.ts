/**
 * The live channel: one Redis Pub/Sub channel that tells every replica "this user's (or client's)
 * sessions, state or roles changed". The replica that revokes a session, records a deactivation or
 * a role change, or deletes a client publishes the owner's id; every replica with open connections
 * of that owner judges them again against Redis (src/live/live-judge.ts). The message carries no
 * verdict, so a lost, late or repeated message is harmless: the sweep judges every connection anyway.
 *
 * One subscribed connection per replica, nothing per proxied request. When the subscription is lost
 * (Redis away, or the connection dropped), `up` turns false and the caller sweeps at a short
 * interval instead; when it comes back, the caller sweeps at once (revocations published meanwhile
 * were missed).
 */
import type { FastifyBaseLogger } from 'fastify'
import { createRedisClient } from '../plugins/app/redis-store.js'
import type { Config } from '../config.js'
import type { RedisClient } from '../lib/redis-client.js'

export const LIVE_CHANNEL = 'gw:live-connections'

/** Whose connections to judge again. */
export type LiveNotice = { u: string } | { c: string }

export function parseNotice (message: string): LiveNotice | null {
  try {
    const value: unknown = JSON.parse(message)
    if (typeof value !== 'object' || value === null) return null
    const { u, c } = value as { u?: unknown, c?: unknown }
    if (typeof u === 'string') return { u }
    if (typeof c === 'string') return { c }
  } catch { /* not ours */ }
  return null
}

export interface LiveChannel {
  /** Tells every replica (this one too) that the owner changed. Never rejects. */
  publish: (notice: LiveNotice) => void
  /** Is the subscription in place now? */
  readonly up: boolean
  close: () => Promise<void>
}

export interface ChannelHandlers {
  notice: (notice: LiveNotice) => void
  /** The subscription is (again) in place: what was published while it was not is lost. */
  resubscribed: () => void
}

export function openLiveChannel (
  redis: RedisClient,
  config: Config['redis'],
  log: FastifyBaseLogger,
  handlers: ChannelHandlers
): LiveChannel {
  // Subscribed again by the 'ready' handler below: ioredis's own resubscription leaves its promise
  // unhandled, which rejects when the connection closes right after a reconnect (shutdown).
  const subscriber = createRedisClient(config, { autoResubscribe: false })
  let up = false
  let closed = false
  subscriber.on('error', () => { /* the publishing client logs Redis errors; the state is `up` */ })
  subscriber.on('message', (_channel: string, message: string) => {
    const notice = parseNotice(message)
    if (notice !== null) handlers.notice(notice)
  })
  subscriber.on('ready', () => {
    subscriber.subscribe(LIVE_CHANNEL).then(() => {
      if (closed) return
      const wasDown = !up
      up = true
      log.info('live channel subscribed')
      if (wasDown) handlers.resubscribed()
    }, (err: unknown) => {
      log.warn({ err: { message: (err as Error).message } }, 'live channel subscription failed; sweeping instead until it is back')
    })
  })
  const down = (): void => {
    if (up) log.warn('live channel lost; sweeping live connections every few seconds until it is back')
    up = false
  }
  subscriber.on('close', down)
  subscriber.on('end', down)
  subscriber.connect().catch(() => { /* retried by the client's retry strategy */ })

  return {
    publish: (notice) => {
      redis.publish(LIVE_CHANNEL, JSON.stringify(notice)).catch((err: unknown) => {
        // The revocation itself is in Redis: the sweep ends the connections.
        log.warn({ err: { message: (err as Error).message } }, 'live channel publish failed; the sweep will end the connections')
      })
    },
    get up () { return up },
    close: async () => {
      closed = true
      up = false
      await subscriber.quit().catch(() => subscriber.disconnect())
    }
  }
}
