/**
 * Judges open live connections again, from what Redis holds now: is the session (or the machine
 * client and its token) still alive, is the user still active, and does the caller still meet the
 * route (the route table in use now: a reload may have removed or tightened it; the user's live
 * roles: a lost role ends the connection). Runs for one owner when the live channel says it changed
 * (src/live/live-channel.ts) and for every owner in the periodic sweep; never per proxied request.
 *
 * A Redis failure judges nothing: the connections stay, and the next sweep tries again.
 */
import type { ClientStore } from '../clients/client-store.js'
import { clientMayUse } from '../proxy/client-caller.js'
import type { RouteMatcher } from '../proxy/decide.js'
import { delegationAllows } from '../proxy/delegated-caller.js'
import type { ProxyRoute } from '../proxy/route-table.js'
import type { SessionStore } from '../sessions/session-store.js'
import type { EndReason, LiveConnection } from './live-registry.js'

export interface JudgeDeps {
  sessions: SessionStore
  clients: ClientStore
  /** The route table in use now. */
  table: () => RouteMatcher
}

/** Does the caller still meet the route it was admitted on, as the table has it now? */
export function stillAllowed (conn: LiveConnection, table: RouteMatcher, roles: readonly string[] | null): boolean {
  const route: ProxyRoute | undefined = table.match(conn.path)
  if (route === undefined) return false
  if (conn.kind === 'websocket' && route.websocket !== true) return false
  if (route.methods !== undefined && !route.methods.includes('GET')) return false
  if (route.public === true) return true
  const { user, client } = conn.owner
  if (client !== null) return clientMayUse(route, 'GET', client)
  if (user === null) return false // admitted on a public route that is no longer public
  if (user.act !== undefined && !delegationAllows(route, 'GET', user)) return false
  const required = route.roles ?? []
  const held = roles ?? user.roles
  return required.length === 0 || required.some((r) => held.includes(r))
}

/**
 * The connections of `conns` (all of one owner key) that must end now, with the reason. Throws
 * when Redis cannot tell (the caller keeps them all).
 */
export async function judgeOwner (conns: readonly LiveConnection[], deps: JudgeDeps): Promise<Array<[LiveConnection, EndReason]>> {
  const first = conns[0]
  if (first === undefined) return []
  const table = deps.table()
  const verdicts: Array<[LiveConnection, EndReason]> = []
  const { user, client } = first.owner
  if (client !== null) {
    const live = new Map<string, boolean>()
    for (const conn of conns) {
      const jti = conn.owner.client!.jti
      if (!live.has(jti)) live.set(jti, await deps.clients.isTokenLive(client.client_id, jti))
    }
    for (const conn of conns) {
      if (live.get(conn.owner.client!.jti) !== true) verdicts.push([conn, 'session_revoked'])
      else if (!stillAllowed(conn, table, null)) verdicts.push([conn, 'forbidden'])
    }
    return verdicts
  }
  if (user === null) {
    // Public routes: only the table can end them.
    for (const conn of conns) if (!stillAllowed(conn, table, null)) verdicts.push([conn, 'forbidden'])
    return verdicts
  }
  const sessionIds = [...new Set(conns.map((c) => c.owner.user!.sid))]
  const checks = await Promise.all(sessionIds.map((sid) => deps.sessions.check(user.sub, sid, { mayRefresh: false })))
  const bySession = new Map(sessionIds.map((sid, i) => [sid, checks[i]!]))
  let inactive: boolean | undefined
  for (const conn of conns) {
    const check = bySession.get(conn.owner.user!.sid)!
    if (!check.alive) {
      // A deactivated user's sessions are gone too: tell the two apart for the close reason.
      inactive ??= (await deps.sessions.readUserState(user.sub))?.active === false
      verdicts.push([conn, inactive ? 'user_inactive' : 'session_revoked'])
    } else if (!stillAllowed(conn, table, check.state.phase !== 'unusable' ? check.state.roles : null)) {
      // Roles too old to trust ('unusable') judge nothing: the admission's roles stand until a fresh read.
      verdicts.push([conn, 'forbidden'])
    }
  }
  return verdicts
}
