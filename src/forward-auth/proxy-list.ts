/**
 * FORWARD_AUTH_PROXIES: the proxies allowed to ask /auth/check, each `IP-or-CIDR=style`. The style
 * fixes which headers carry the original request (see src/forward-auth/original-request.ts), so a
 * client's own header of another style is never read.
 */
import proxyAddr from '@fastify/proxy-addr'

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

/** Parses the entries; throws an Error whose message names the bad entry. */
export function parseForwardAuthProxies (entries: readonly string[]): ForwardAuthProxies {
  return entries.map((entry) => {
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
    return { entry, style, matches: (peer: string) => trust(peer, 0) }
  })
}

/** The style of the proxy at this peer address, or undefined when it is not listed. */
export function styleOf (proxies: ForwardAuthProxies, peer: string | undefined): ForwardAuthStyle | undefined {
  if (peer === undefined) return undefined
  return proxies.find((p) => p.matches(peer))?.style
}
