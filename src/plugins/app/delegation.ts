/**
 * What token exchange may target (src/routes/oauth/token-exchange.ts) and what the metadata
 * document announces: the upstreams of the proxy's route table, the scopes its routes grant, and
 * the lifetime of a delegated token. Read from the table the proxy uses now (a reload of the
 * routes file changes them too).
 */
import fp from 'fastify-plugin'
import type { ProxyRoute } from '../../proxy/route-table.js'
import type { RoutesSpec } from '../../proxy/routes-file.js'

/** A delegated token lives at most this long (and never past ACCESS_TOKEN_TTL or the subject token). */
export const DELEGATED_TOKEN_MAX_TTL = 300

/** Scopes of the OAuth endpoints themselves, granted to clients like the route table's. */
export const OAUTH_SCOPES = {
  introspect: 'tokens:introspect',
  exchange: 'token-exchange'
} as const

export interface DelegationTargets {
  /** Upstream names a delegated token may be restricted to. */
  upstreams: ReadonlySet<string>
  /** The scopes the routes of an upstream grant (a narrowed delegated token names some of them). */
  scopesOf: (upstream: string) => ReadonlySet<string>
  /** Every scope a client can use here: the route table's and the OAuth endpoints'. */
  scopesSupported: readonly string[]
  /** Seconds a delegated token lives. */
  ttl: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The delegation targets of the route table in use. */
    delegation: () => DelegationTargets
  }
}

export function delegationTargets (routes: readonly ProxyRoute[], accessTtl: number): DelegationTargets {
  const scopes = new Map<string, Set<string>>()
  for (const route of routes) {
    if (route.public === true) continue
    const set = scopes.get(route.upstream) ?? new Set<string>()
    for (const list of Object.values(route.scopes ?? {})) for (const s of list) set.add(s)
    scopes.set(route.upstream, set)
  }
  const all = new Set<string>([...scopes.values()].flatMap((s) => [...s]))
  return {
    upstreams: new Set(scopes.keys()),
    scopesOf: (upstream) => scopes.get(upstream) ?? new Set(),
    scopesSupported: [...all].sort().concat(Object.values(OAUTH_SCOPES)),
    ttl: Math.min(DELEGATED_TOKEN_MAX_TTL, accessTtl)
  }
}

export default fp(async (fastify) => {
  // Computed once per table: a reload swaps the spec object.
  let computedFor: RoutesSpec | null = null
  let targets: DelegationTargets | null = null
  fastify.decorate('delegation', () => {
    const spec = fastify.routesControl.current()
    if (targets === null || computedFor !== spec) {
      targets = delegationTargets(spec.routes, fastify.config.jwt.accessTtl)
      computedFor = spec
    }
    return targets
  })
}, { name: 'delegation', dependencies: ['config'] })
