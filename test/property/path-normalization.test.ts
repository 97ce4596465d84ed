/**
 * Property-based tests (fast-check) of path normalization and route matching (docs/proxy.md):
 * normalization is idempotent, nothing it lets through contains an encoded separator, a dot
 * segment or a doubled slash once decoded, and the path that routing authorizes is the path that is
 * forwarded; then the same against a listening gateway and echo upstreams.
 */
import t from 'tap'
import fc from 'fast-check'
import { normalizePath, rewriteToNormalizedUrl, splitUrl, INVALID_PATH_ROUTE } from '../../src/proxy/normalize-path.js'
import { RouteTable } from '../../src/proxy/route-table.js'
import { build } from '../helper.js'
import { startEcho } from '../helpers/echo-upstream.js'
import { rawPathRequest } from '../helpers/raw-http.js'

/** Path pieces chosen to hit every rule: separators raw and encoded, dots, percent tricks, unicode. */
const piece = fc.constantFrom(
  '/', '//', '.', '..', '/./', '/../', 'api', 'orders', 'users', 'me', 'admin', 'x', '42',
  '%2F', '%2f', '%5C', '%5c', '%25', '%252F', '%2E', '%2e%2e', '%2E%2E', '%00', '%41', '%C3%A9', '%E2%82%AC', '%ZZ', '%',
  '\\', ';', ';x=1', ' ', '\t', '~', '!', "'", '(', '*', ':', '@', '+', '=', ',', '-', '_', 'é', '李'
)
const rawPath = fc.array(piece, { maxLength: 12 }).map((pieces) => '/' + pieces.join(''))
const routedPath = fc.tuple(fc.constantFrom('/api/orders', '/api/users', '/api/users/me', '/api'), fc.array(piece, { maxLength: 8 }))
  .map(([prefix, pieces]) => prefix + pieces.join(''))
const query = fc.oneof(fc.constant(''), fc.array(fc.constantFrom('a', '=', '&', '/', '..', '%2F', '?', 'q'), { maxLength: 8 }).map((q) =>
  '?' + q.join('')))
// A path has no query string: `?` and `#` are left out of generated paths (queries are generated apart).
const anyPath = fc.oneof(rawPath, routedPath, fc.string({ maxLength: 40 }).map((s) => '/' + s)).map((p) => p.replace(/[?#]/g, ''))
/** What an HTTP client can put on the request line (Node refuses the rest before sending). */
const sendable = routedPath.filter((p) => /^[\x21-\x7e]+$/.test(p))

t.test('normalization is idempotent', async (t) => {
  fc.assert(fc.property(anyPath, (p) => {
    const once = normalizePath(p)
    return once === null || normalizePath(once) === once
  }), { numRuns: 3000 })
  t.pass('normalizePath(normalizePath(p)) === normalizePath(p) for every accepted p')
})

t.test('no accepted output hides a separator or a dot segment', async (t) => {
  fc.assert(fc.property(anyPath, (p) => {
    const n = normalizePath(p)
    if (n === null) return true
    if (!n.startsWith('/') || /%2f|%5c|%25|%00/i.test(n)) return false
    const decoded = decodeURIComponent(n)
    if (decoded.includes('\\') || decoded.includes('//')) return false
    // Once decoded, the segments are exactly the segments of the output: no encoded `/` inside one.
    return !decoded.split('/').slice(1).some((s) => s === '.' || s === '..') &&
      decoded.split('/').length === n.split('/').length
  }), { numRuns: 3000 })
  t.pass('no %2F/%5C/%25 in any output, no dot segment or doubled slash once decoded')
})

t.test('the authorized path is the forwarded path', async (t) => {
  const table = new RouteTable()
  fc.assert(fc.property(anyPath, query, (p, q) => {
    const url = p + q
    const rewritten = rewriteToNormalizedUrl({ url })
    const normalized = normalizePath(p)
    if (normalized === null) return rewritten === INVALID_PATH_ROUTE && table.match(rewritten) === undefined
    const forwarded = splitUrl(rewritten)
    // Routing and forwarding both use `forwarded.path`; a second normalization (by an upstream)
    // cannot move it to another route, and the query string is forwarded untouched.
    return forwarded.path === normalized &&
      forwarded.query === splitUrl(url).query &&
      normalizePath(forwarded.path) === forwarded.path &&
      table.match(forwarded.path) === table.match(normalizePath(forwarded.path)!)
  }), { numRuns: 3000 })
  t.pass('rewriteToNormalizedUrl forwards exactly the path that the route table matched')
})

t.test('against a listening gateway: an upstream only ever receives an authorized, normalized path', async (t) => {
  const relaxed = { LOGIN_IP_LIMIT: '100000', API_USER_LIMIT: '100000', PUBLIC_IP_LIMIT: '100000', VERIFY_IP_LIMIT: '100000' }
  const usersEcho = await startEcho(t)
  const ordersEcho = await startEcho(t)
  const auth = await build(t, { env: relaxed })
  const h = await build(t, { env: { ...relaxed, USERS_URL: usersEcho.url, ORDERS_URL: ordersEcho.url }, keyRing: auth.keyRing,
    redis: auth.redis })
  const alice = await auth.login('alice')
  const table = new RouteTable()
  let forwarded = 0

  await fc.assert(fc.asyncProperty(sendable, async (p) => {
    usersEcho.reset(); ordersEcho.reset()
    const res = await rawPathRequest(h.url, 'GET', p, { token: alice.access })
    const received = [...usersEcho.requests, ...ordersEcho.requests].map((r) => r.url)
    if (res.status >= 500) return false
    if (received.length === 0) return res.status !== 200
    forwarded++
    const normalized = normalizePath(p)
    const route = normalized === null ? undefined : table.match(normalized)
    // alice (role user) may reach the orders routes and her own /api/users/me only.
    const allowed = route !== undefined && (route.roles === undefined || route.roles.includes('user'))
    const echo = route?.upstream === 'users' ? usersEcho : ordersEcho
    return received.length === 1 && allowed && received[0] === normalized && echo.count === 1 && res.status === 200
  }), { numRuns: 150 })
  t.ok(forwarded > 0, `${forwarded} of the generated requests were forwarded (the property was exercised)`)
})
