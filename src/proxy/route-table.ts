/**
 * The proxy's one declarative route table (contract section 5). A request is proxied only when its
 * normalized path matches a route here; everything else is 404 without touching an upstream.
 *
 * A route matches its `path` exactly, or (unless `exact`) any path below it (`path` + '/...').
 * The most specific route wins: exact routes first, then the longest prefix.
 */

/** Upstream services by name; the name is the `aud` of the assertion each one receives. */
export const UPSTREAMS = ['users', 'orders'] as const
export type UpstreamName = typeof UPSTREAMS[number]

/** Limit classes of section 6: `api` counts per user (authenticated routes only), `public` per client IP. */
export type LimitClass = 'api' | 'public'

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
   * Machine clients (contract 13): by method, the scopes of which a client token needs one (HEAD
   * falls back to GET). A client reaches only routes and methods listed here; users are not affected.
   */
  scopes?: Readonly<Record<string, readonly string[]>>
  limit: LimitClass
  /** The upstream checks the caller's password here: attempts count like logins (lockout per username and IP). */
  passwordCheck?: boolean
}

export const ROUTE_TABLE: readonly ProxyRoute[] = [
  { path: '/api/users/me', exact: true, upstream: 'users', methods: ['GET', 'HEAD'], limit: 'api' },
  { path: '/api/users/me/password', exact: true, upstream: 'users', methods: ['POST'], limit: 'api', passwordCheck: true },
  { path: '/api/users', upstream: 'users', roles: ['admin'], limit: 'api' },
  { path: '/api/orders', upstream: 'orders', limit: 'api', scopes: { GET: ['orders:read'], POST: ['orders:write'] } }
]

/** Most specific first: exact before prefix, longer before shorter. */
function bySpecificity (a: ProxyRoute, b: ProxyRoute): number {
  if ((a.exact === true) !== (b.exact === true)) return a.exact === true ? -1 : 1
  return b.path.length - a.path.length
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
    return this.routes.find((r) => path === r.path || (r.exact !== true && path.startsWith(r.path + '/')))
  }

  /** The mount point of each upstream: the shortest route path that leads to it. */
  mountPoints (): Map<UpstreamName, string[]> {
    const mounts = new Map<UpstreamName, string[]>()
    for (const r of [...this.routes].sort((a, b) => a.path.length - b.path.length)) {
      const existing = mounts.get(r.upstream) ?? []
      if (!existing.some((p) => r.path === p || r.path.startsWith(p + '/'))) existing.push(r.path)
      mounts.set(r.upstream, existing)
    }
    return mounts
  }
}
