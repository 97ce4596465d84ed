/**
 * FORWARD_AUTH_PROXIES: the proxies allowed to ask /auth/check, each `IP-or-CIDR=style`. The style
 * fixes which headers carry the original request (see src/forward-auth/original-request.ts), so a
 * client's own header of another style is never read.
 */
import proxyAddr from '@fastify/proxy-addr'
import ipaddr from 'ipaddr.js'

export const FORWARD_AUTH_STYLES = ['traefik', 'caddy', 'nginx', 'ingress-nginx', 'envoy'] as const
export type ForwardAuthStyle = typeof FORWARD_AUTH_STYLES[number]

export interface ForwardAuthProxy {
  /** The entry as configured, for logs. */
  entry: string
  style: ForwardAuthStyle
  matches: (address: string) => boolean
}

export type ForwardAuthProxies = readonly ForwardAuthProxy[]

function isStyle (s: string): s is ForwardAuthStyle {
  return (FORWARD_AUTH_STYLES as readonly string[]).includes(s)
}

/** An entry's range as [network, prefix length], IPv4-mapped IPv6 taken as IPv4. */
function rangeOf (address: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  const [net, bits] = address.includes('/') ? ipaddr.parseCIDR(address) : [ipaddr.parse(address), -1]
  if (net instanceof ipaddr.IPv6 && net.isIPv4MappedAddress()) {
    return [net.toIPv4Address(), bits === -1 ? 32 : bits - 96]
  }
  return [net, bits === -1 ? (net.kind() === 'ipv4' ? 32 : 128) : bits]
}

/** Two ranges overlap exactly when one holds the other's network address. */
function overlap (a: string, b: string): boolean {
  const [netA, bitsA] = rangeOf(a)
  const [netB, bitsB] = rangeOf(b)
  if (netA.kind() !== netB.kind()) return false
  return netB.match(netA, bitsA) || netA.match(netB, bitsB)
}

/**
 * Parses the entries; throws an Error whose message names the bad entry. Two entries of different
 * styles may not cover the same address: a proxy has exactly one style, whatever the order.
 */
export function parseForwardAuthProxies (entries: readonly string[]): ForwardAuthProxies {
  const proxies = entries.map((entry) => {
    const at = entry.lastIndexOf('=')
    const address = entry.slice(0, at).trim()
    const style = entry.slice(at + 1).trim()
    if (at <= 0 || !isStyle(style)) {
      throw new Error(`invalid entry ${JSON.stringify(entry)} (must be IP-or-CIDR=style, style one of ${FORWARD_AUTH_STYLES.join(', ')})`)
    }
    let trust: (addr: string, i: number) => boolean
    try {
      // proxy-addr's parser: IPv4/IPv6 addresses and CIDR ranges, IPv4-mapped IPv6 peers included.
      trust = proxyAddr.compile(address)
    } catch {
      throw new Error(`invalid address ${JSON.stringify(address)} in ${JSON.stringify(entry)} (must be an IP address or a CIDR range)`)
    }
    return { entry, style, address, matches: (peer: string) => trust(peer, 0) }
  })
  for (const [i, a] of proxies.entries()) {
    const clash = proxies.slice(i + 1).find((b) => b.style !== a.style && overlap(a.address, b.address))
    if (clash !== undefined) {
      throw new Error(`entries ${JSON.stringify(a.entry)} and ${JSON.stringify(clash.entry)} overlap with different styles ` +
        '(a proxy has exactly one style)')
    }
  }
  return proxies.map(({ entry, style, matches }) => ({ entry, style, matches }))
}

/** The style of the proxy at this peer address, or undefined when it is not listed. */
export function styleOf (proxies: ForwardAuthProxies, peer: string | undefined): ForwardAuthStyle | undefined {
  if (peer === undefined) return undefined
  return proxies.find((p) => p.matches(peer))?.style
}
