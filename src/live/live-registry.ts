/**
 * Every long-lived connection through the gateway on this replica (a proxied WebSocket, or a
 * streamed `text/event-stream` answer), with the session, user or client and route it belongs to.
 * In memory only: a connection exists on one replica, and each replica judges its own (see
 * src/live/live-judge.ts). Admission counts against LIVE_CONNECTIONS_PER_USER per owner.
 */
import type { ProxyRoute } from '../proxy/route-table.js'
import type { AccessClaims, ClientAccessClaims } from '../tokens/claims.js'

export type LiveKind = 'websocket' | 'stream'

/** Why the gateway ends a connection (the WebSocket close reason; the metric's label). */
export type EndReason = 'session_revoked' | 'user_inactive' | 'forbidden' | 'shutting_down'

/** Why a connection ended, whoever ended it (the metric's label). */
export type EndedBy = EndReason | 'message_too_large' | 'closed'

/** Whose connection it is: the verified claims it was admitted with (none on a public route). */
export interface LiveOwner {
  user: AccessClaims | null
  client: ClientAccessClaims | null
}

export interface LiveConnection {
  readonly kind: LiveKind
  readonly owner: LiveOwner
  /** `u:<id>`, `c:<id>` or `ip:<address>` (public routes): the key of the per-owner limit. */
  readonly ownerKey: string
  /** The request's normalized path: re-matched when the route table changes. */
  readonly path: string
  /** The route it was admitted on. */
  readonly route: ProxyRoute
  readonly ip: string
  readonly requestId: string
  /** Ends the connection (WebSocket close 1008 with the reason, 1001 on shutdown; a stream ended). */
  readonly end: (reason: EndReason) => void
}

export class LiveRegistry {
  readonly #byOwner = new Map<string, Set<LiveConnection>>()
  #size = { websocket: 0, stream: 0 }

  constructor (readonly perOwnerLimit: number) {}

  /** Room for one more connection of this owner? */
  hasRoom (ownerKey: string): boolean {
    return (this.#byOwner.get(ownerKey)?.size ?? 0) < this.perOwnerLimit
  }

  /** Registers the connection; false (nothing registered) when its owner is at the limit. */
  add (conn: LiveConnection): boolean {
    let set = this.#byOwner.get(conn.ownerKey)
    if (set === undefined) {
      set = new Set()
      this.#byOwner.set(conn.ownerKey, set)
    }
    if (set.size >= this.perOwnerLimit) return false
    set.add(conn)
    this.#size[conn.kind]++
    return true
  }

  /** Forgets the connection (it ended); true when it was registered. */
  remove (conn: LiveConnection): boolean {
    const set = this.#byOwner.get(conn.ownerKey)
    if (set?.delete(conn) !== true) return false
    if (set.size === 0) this.#byOwner.delete(conn.ownerKey)
    this.#size[conn.kind]--
    return true
  }

  /** The open connections of an owner key (a copy: ending one changes the set). */
  of (ownerKey: string): LiveConnection[] {
    const set = this.#byOwner.get(ownerKey)
    return set === undefined ? [] : [...set]
  }

  /** Owner keys with open connections. */
  owners (): string[] {
    return [...this.#byOwner.keys()]
  }

  all (): LiveConnection[] {
    const out: LiveConnection[] = []
    for (const set of this.#byOwner.values()) out.push(...set)
    return out
  }

  count (kind: LiveKind): number {
    return this.#size[kind]
  }
}

export const userKey = (userId: string): string => `u:${userId}`
export const clientKey = (clientId: string): string => `c:${clientId}`
export const ipKey = (ip: string): string => `ip:${ip}`
