/**
 * The pure parts of live connections (src/live/): the registry's per-owner limit, the route
 * re-judgement after a table change or a role change, the ticket's removal from the upstream URL,
 * which upgrades are taken, and the live channel's messages.
 */
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { LiveRegistry, userKey, type LiveConnection } from '../../src/live/live-registry.js'
import { stillAllowed } from '../../src/live/live-judge.js'
import { isWebSocketUpgrade, withoutTicket } from '../../src/live/ws-upgrade.js'
import { parseNotice } from '../../src/live/live-channel.js'
import { RouteTable, type ProxyRoute } from '../../src/proxy/route-table.js'
import type { AccessClaims, ClientAccessClaims } from '../../src/tokens/claims.js'

const user = (roles: string[]): AccessClaims => ({ sub: '1001', sid: 's1', roles, username: 'alice' }) as unknown as AccessClaims
const client = (scope: string): ClientAccessClaims => ({ sub: 'client:c1', client_id: 'c1', scope }) as unknown as ClientAccessClaims

function conn (
  path: string,
  route: ProxyRoute,
  owner: Partial<LiveConnection['owner']>,
  kind: LiveConnection['kind'] = 'websocket'
): LiveConnection {
  return {
    kind,
    owner: { user: null, client: null, ...owner },
    ownerKey: userKey('1001'),
    path,
    route,
    ip: '127.0.0.1',
    requestId: 'r',
    end: () => {}
  }
}

t.test('the registry counts per owner and refuses one more', async (t) => {
  const reg = new LiveRegistry(2)
  const route: ProxyRoute = { path: '/ws', upstream: 'orders', limit: 'api', websocket: true }
  const a = conn('/ws', route, { user: user([]) })
  const b = conn('/ws', route, { user: user([]) }, 'stream')
  const c = conn('/ws', route, { user: user([]) })
  t.ok(reg.add(a))
  t.ok(reg.add(b))
  t.notOk(reg.add(c), 'the third of one owner is refused')
  t.same([reg.count('websocket'), reg.count('stream')], [1, 1])
  t.ok(reg.remove(a))
  t.notOk(reg.remove(a), 'removed once')
  t.ok(reg.add(c), 'room again')
  reg.remove(b)
  reg.remove(c)
  t.same(reg.owners(), [], 'an owner without connections is forgotten')
})

t.test('re-judging a connection against the table and the live roles', async (t) => {
  const ws: ProxyRoute = { path: '/api/orders/ws', exact: true, upstream: 'orders', limit: 'api', websocket: true, roles: ['user'] }
  const orders: ProxyRoute = { path: '/api/orders', upstream: 'orders', limit: 'api', scopes: { GET: ['orders:read'] } }
  const table = new RouteTable([ws, orders])
  const alice = conn('/api/orders/ws', ws, { user: user(['user']) })
  t.ok(stillAllowed(alice, table, null), 'the admission roles')
  t.ok(stillAllowed(alice, table, ['user', 'x']), 'live roles that still hold one')
  t.notOk(stillAllowed(alice, table, ['guest']), 'a lost role')
  t.notOk(stillAllowed(alice, new RouteTable([orders]), null), 'the route gone: the prefix route takes no upgrades')
  t.notOk(stillAllowed(alice, new RouteTable([{ ...ws, methods: ['POST'] }, orders]), null), 'GET no longer allowed')
  t.ok(stillAllowed(alice, new RouteTable([{ ...ws, roles: undefined, public: true, limit: 'public' }]), ['guest']), 'a route made public')
  const stream = conn('/api/orders/events', orders, { client: client('orders:read') }, 'stream')
  t.ok(stillAllowed(stream, table, null), 'a client with the scope')
  t.notOk(stillAllowed(stream, new RouteTable([{ ...orders, scopes: { GET: ['orders:admin'] } }]), null), 'a tightened scope')
  t.notOk(
    stillAllowed(conn('/api/orders/events', orders, {}, 'stream'), table, null),
    'admitted on a public route that is no longer public'
  )
})

t.test('the ticket never reaches the upstream', async (t) => {
  t.equal(withoutTicket('/ws'), '/ws')
  t.equal(withoutTicket('/ws?ticket=abc'), '/ws')
  t.equal(withoutTicket('/ws?a=1&ticket=abc&b=2'), '/ws?a=1&b=2')
  t.equal(withoutTicket('/ws?%74icket=abc&tickets=1'), '/ws?tickets=1', 'an encoded name too')
  t.equal(withoutTicket('/ws?ticket=a&ticket=b'), '/ws')
})

t.test('only a GET asking for websocket is taken as an upgrade', async (t) => {
  const req = (method: string, upgrade?: string): IncomingMessage =>
    ({ method, headers: upgrade === undefined ? {} : { upgrade } }) as unknown as IncomingMessage
  t.ok(isWebSocketUpgrade(req('GET', 'websocket')))
  t.ok(isWebSocketUpgrade(req('GET', 'WebSocket')))
  t.notOk(isWebSocketUpgrade(req('GET', 'h2c')), 'h2c stays an ordinary request')
  t.notOk(isWebSocketUpgrade(req('POST', 'websocket')))
  t.notOk(isWebSocketUpgrade(req('GET')))
})

t.test('live channel messages', async (t) => {
  t.same(parseNotice('{"u":"1001"}'), { u: '1001' })
  t.same(parseNotice('{"c":"c1"}'), { c: 'c1' })
  for (const bad of ['', 'x', '{}', '{"u":1}', 'null', '[]']) t.equal(parseNotice(bad), null, bad)
})
