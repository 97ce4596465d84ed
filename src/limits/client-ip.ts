/**
 * The client key of per-IP limits. `request.ip` already honours TRUST_PROXY (forwarded headers
 * count only from trusted peers). An IPv4-mapped IPv6 address (::ffff:0:0/96, in any notation) is
 * its IPv4 address, and an IPv6 client is bucketed by its /64, since one host usually owns the
 * whole /64. Every notation of one address gives the same bucket.
 */
import { isIPv6 } from 'node:net'

/** The eight 16-bit groups of a valid IPv6 address (an embedded dotted quad is two groups). */
function ipv6Groups (ip: string): number[] {
  let text = ip.toLowerCase()
  const dotted = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number]
    text = text.slice(0, dotted.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16)
  }
  const parts = (s: string): string[] => s === '' ? [] : s.split(':')
  const [head = '', tail] = text.split('::')
  const h = parts(head)
  const t = tail === undefined ? [] : parts(tail)
  const zeros = Array<string>(Math.max(8 - h.length - t.length, 0)).fill('0')
  return [...h, ...zeros, ...t].map((g) => parseInt(g, 16))
}

const hex4 = (g: number): string => g.toString(16).padStart(4, '0')

export function clientBucket (ip: string): string {
  const zoneless = ip.split('%')[0] ?? ip
  if (!isIPv6(zoneless)) return zoneless
  const g = ipv6Groups(zoneless)
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    const [hi = 0, lo = 0] = g.slice(6)
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
  }
  return g.slice(0, 4).map(hex4).join(':') + '::/64'
}
