/**
 * Path normalization before routing (docs/proxy.md): percent-decoding, dot segments and
 * duplicate slashes are resolved once, and routing, authorization and forwarding all use the
 * result, so no encoding trick can reach an upstream path other than the one that was authorized.
 *
 * Refused outright (400): an encoded slash or backslash (%2F, %5C), an encoded percent (%25, the
 * double-encoding trick), NUL and control characters, a backslash, `;` path parameters, invalid
 * percent-encoding, and a `..` that would climb above the root.
 */

// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const REFUSED_RAW = /%2f|%5c|%25|%00|\\|;|[\x00-\x20\x7f]/i
const NEEDS_WORK = /%|\/\/|\/\.|\/$/

/** The normalized path, or null when the path is refused. `rawPath` has no query string. */
export function normalizePath (rawPath: string): string | null {
  if (!rawPath.startsWith('/') || REFUSED_RAW.test(rawPath)) return null
  if (!NEEDS_WORK.test(rawPath)) return rawPath // the common case: nothing to decode or resolve
  let decoded: string
  try {
    decoded = decodeURIComponent(rawPath)
  } catch {
    return null
  }
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\x00-\x1f\x7f\\]/.test(decoded)) return null
  const segments: string[] = []
  for (const segment of decoded.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (segments.length === 0) return null
      segments.pop()
      continue
    }
    segments.push(segment)
  }
  return '/' + segments.map(encodeURIComponent).join('/')
}

/** Splits a request URL into its path and its query string (with the `?`, or ''). */
export function splitUrl (url: string): { path: string, query: string } {
  const q = url.indexOf('?')
  return q === -1 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q) }
}

/** The path of a request URL, without its query string (splitUrl's `path`, without an object per request). */
export function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

const kInvalidPath = Symbol('invalidPath')
/** Where a refused path is routed: nowhere, so the not-found handler answers (400, see below). */
export const INVALID_PATH_ROUTE = '/.invalid-path'

/**
 * Fastify's `rewriteUrl`: routing sees the normalized URL (query string untouched). A refused
 * path is marked on the raw request and sent to a path no route matches; the not-found handler
 * answers it 400 `invalid_request`.
 */
export function rewriteToNormalizedUrl (req: { url?: string }): string {
  const url = req.url ?? '/'
  const path = pathOf(url)
  const normalized = normalizePath(path)
  if (normalized === null) {
    (req as Record<symbol, boolean>)[kInvalidPath] = true
    return INVALID_PATH_ROUTE
  }
  return normalized === path ? url : normalized + url.slice(path.length)
}

export function wasRefusedPath (req: object): boolean {
  return (req as Record<symbol, boolean>)[kInvalidPath] === true
}
