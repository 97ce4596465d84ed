/**
 * @fastify/reply-from refuses any upstream path whose decoded form contains `/..` or `../`
 * (`buildURL`), so a legitimate segment such as `...` or `..draft` gets a 400 although it is no
 * dot-segment. The gateway has already resolved every real dot-segment (normalize-path.ts), so
 * the dots of such segments are handed to reply-from escaped as `%252E`, and the upstream pool
 * turns them back into dots just before the request is written.
 *
 * The escape is unambiguous: a normalized path never contains `%25` (an encoded percent is
 * refused before routing, and a bare `%` is invalid encoding).
 */
const ESCAPED_DOT = '%252E'
const ESCAPED_DOTS = /%252E/g

/** The path as reply-from accepts it (unchanged unless a segment starts or ends with `..`). */
export function escapeDottedSegments (path: string): string {
  if (!path.includes('..')) return path
  return path.split('/').map((segment) => segment.includes('..') ? segment.replaceAll('.', ESCAPED_DOT) : segment).join('/')
}

/**
 * The request target as the upstream must receive it: the inverse of `escapeDottedSegments` on
 * the path; the query string (forwarded as the client sent it) is never touched.
 */
export function unescapeDottedSegments (target: string): string {
  if (!target.includes(ESCAPED_DOT)) return target
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  return path.replace(ESCAPED_DOTS, '.') + (q === -1 ? '' : target.slice(q))
}
