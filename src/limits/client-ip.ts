/**
 * The client key of per-IP limits. `request.ip` already honours TRUST_PROXY (forwarded headers
 * count only from trusted peers). An IPv4-mapped IPv6 address (::ffff:0:0/96, in any notation) is
 * its IPv4 address, and an IPv6 client is bucketed by its /64, since one host usually owns the
 * whole /64. Every notation of one address gives the same bucket.
 */
import { isIPv6 } from 'node:net'
import ipaddr from 'ipaddr.js'

const hex4 = (g: number): string => g.toString(16).padStart(4, '0')

export function clientBucket (ip: string): string {
  const zoneless = ip.split('%')[0] ?? ip
  if (!isIPv6(zoneless)) return zoneless
  const address = ipaddr.IPv6.parse(zoneless)
  if (address.isIPv4MappedAddress()) return address.toIPv4Address().toString()
  return address.parts.slice(0, 4).map(hex4).join(':') + '::/64'
}
