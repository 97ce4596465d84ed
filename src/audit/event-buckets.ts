/**
 * Events per type and time bucket for the dashboard's chart, read from the per-minute and
 * per-hour counters that every append increments (audit-log.ts): the last hour as 60 one-minute
 * buckets, the last day as 24 one-hour buckets, oldest first, the current (partial) bucket last.
 * One pipeline, one round trip; counting never scans the Stream.
 */
import type { RedisClient } from '../lib/redis-client.js'
import { hourKey, minuteKey } from './audit-log.js'

export type BucketWindow = 'hour' | 'day'

export interface EventBuckets {
  window: BucketWindow
  bucket_seconds: number
  /** Start of each bucket (ISO time), oldest first. */
  times: string[]
  /** Per event type, one count per bucket (same order as `times`); types without events are absent. */
  series: Record<string, number[]>
}

const SHAPE: Record<BucketWindow, { seconds: number, count: number, key: (n: number) => string }> = {
  hour: { seconds: 60, count: 60, key: minuteKey },
  day: { seconds: 3600, count: 24, key: hourKey }
}

export async function eventBuckets (redis: RedisClient, window: BucketWindow, nowMs = Date.now()): Promise<EventBuckets> {
  const { seconds, count, key } = SHAPE[window]
  const current = Math.floor(nowMs / (seconds * 1000))
  const indexes = Array.from({ length: count }, (_, i) => current - count + 1 + i)
  const pipeline = redis.pipeline()
  for (const n of indexes) pipeline.hgetall(key(n))
  const results = await pipeline.exec() ?? []
  const series: Record<string, number[]> = {}
  results.forEach(([err, value], i) => {
    if (err !== null) throw err
    for (const [event, n] of Object.entries(value as Record<string, string>)) {
      const counts = series[event] ??= new Array<number>(count).fill(0)
      counts[i] = Number(n)
    }
  })
  return { window, bucket_seconds: seconds, times: indexes.map((n) => new Date(n * seconds * 1000).toISOString()), series }
}
