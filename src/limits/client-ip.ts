/**
 * The client key of per-IP limits. `request.ip` already honours TRUST_PROXY (forwarded headers
 * count only from trusted peers). An IPv4-mapped IPv6 address is its IPv4 address, and an IPv6
 * client is bucketed by its /64, since one host usually owns the whole /64.
 */
import { isIPv6 } from 'node:net'

function expandIPv6 (ip: string): string[] {
  const [head = '', tail = ''] = ip.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : []
  const missing = 8 - h.length - t.length
  return [...h, ...Array<string>(Math.max(missing, 0)).fill('0'), ...t].map((g) => g.padStart(4, '0').toLowerCase())
}

export function clientBucket (ip: string): string {
  const zoneless = ip.split('%')[0] ?? ip
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(zoneless)
  if (mapped !== null) return mapped[1]!
  if (!isIPv6(zoneless)) return zoneless
  return expandIPv6(zoneless).slice(0, 4).join(':') + '::/64'
}
