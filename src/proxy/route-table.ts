/**
 * The proxy's route table (docs/proxy.md). A request is proxied only when its normalized path
 * matches a route here; everything else is 404 without touching an upstream. The table comes from
 * a routes file (src/proxy/routes-file.ts): ROUTES_FILE, or the shipped demo file
 * config/demo-routes.yaml.
 *
 * A route matches its `path` exactly, or (unless `exact`) any path below it (`path` + '/...').
 * The route with the longest path wins whatever the order of the file (an exact route before a
 * prefix route of the same path), and it alone decides: no fallback to a shorter route.
 */
import { DEMO_ROUTES_FILE, DEMO_URL_DEFAULTS, readRoutesFileSync } from './routes-file.js'

/** An upstream's name: the `aud` of the assertion it receives, and its metrics label. */
export type UpstreamName = string

/** Limit classes of docs/abuse-protection.md: `api` counts per user (authenticated routes only), `public` per client IP. */
export type LimitClass = 'api' | 'public'

export { DEFAULT_BODY_LIMIT } from './routes-file-schema.js'

export interface ProxyRoute {
  path: string
  exact?: boolean
  upstream: UpstreamName
  /** No token needed. */
  public?: boolean
  /** The caller needs at least one of these roles (empty: any authenticated user). */
  roles?: string[]
  /** Methods allowed (default: all). */
  methods?: string[]
  /**
   * Machine clients (docs/machine-clients.md): by method, the scopes of which a client token needs one (HEAD
   * falls back to GET). A client reaches only routes and methods listed here; users are not affected.
   */
  scopes?: Readonly<Record<string, readonly string[]>>
  limit: LimitClass
  /** The upstream checks the caller's password here: attempts count like logins (lockout per username and IP). */
  passwordCheck?: boolean
  /** Largest request body in bytes (default DEFAULT_BODY_LIMIT); also the largest WebSocket message. */
  bodyLimit?: number
  /** A user needs a second factor used within this many seconds (RFC 9470 step-up, src/mfa/step-up.ts). */
  stepUpMaxAge?: number
  /** WebSocket upgrades allowed (src/live/ws-proxy.ts). */
  websocket?: boolean
}

/** The routes of the shipped demo file (config/demo-routes.yaml), for tests that extend them. */
export const ROUTE_TABLE: readonly ProxyRoute[] = readRoutesFileSync(DEMO_ROUTES_FILE, { vars: DEMO_URL_DEFAULTS }).routes

/** Longest path first; an exact route before a prefix route of the same path. */
function bySpecificity (a: ProxyRoute, b: ProxyRoute): number {
  if (a.path.length !== b.path.length) return b.path.length - a.path.length
  return (b.exact === true ? 1 : 0) - (a.exact === true ? 1 : 0)
}

export class RouteTable {
  readonly routes: readonly ProxyRoute[]

  constructor (routes: readonly ProxyRoute[] = ROUTE_TABLE) {
    for (const r of routes) {
      if (!r.path.startsWith('/') || r.path.endsWith('/') || r.path.includes('//')) {
        throw new Error(`route table: invalid path ${r.path}`)
      }
      if (r.public === true && r.limit === 'api') {
        throw new Error(`route table: ${r.path} is public, so it has no user to count against (limit: 'public')`)
      }
    }
    this.routes = [...routes].sort(bySpecificity)
  }

  /** The route of a normalized path, or undefined (404). */
  match (path: string): ProxyRoute | undefined {
    for (const r of this.routes) {
      if (path === r.path || (r.exact !== true && path.length > r.path.length && path.startsWith(r.path)
        && path.charCodeAt(r.path.length) === 47)) return r
    }
    return undefined
  }

  /** The mount point of each route: the shortest route path of its upstream that covers it. */
  mountPoints (): Map<ProxyRoute, string> {
    const byUpstream = new Map<UpstreamName, string[]>()
    for (const r of [...this.routes].sort((a, b) => a.path.length - b.path.length)) {
      const existing = byUpstream.get(r.upstream) ?? []
      if (!existing.some((p) => r.path === p || r.path.startsWith(p + '/'))) existing.push(r.path)
      byUpstream.set(r.upstream, existing)
    }
    const mounts = new Map<ProxyRoute, string>()
    for (const r of this.routes) {
      const candidates = byUpstream.get(r.upstream) ?? []
      mounts.set(r, candidates.find((p) => r.path === p || r.path.startsWith(p + '/')) ?? r.path)
    }
    return mounts
  }
}
