/**
 * Redis client-side caching on Redis Cluster (docs/session-cache.md, "Redis Cluster"): the form of
 * src/sessions/invalidation-tracker.ts on every node. Cache-filling reads go through a dedicated
 * Cluster client (`data`); each of its node connections reads with `CLIENT TRACKING on REDIRECT
 * <id>`, where `<id>` is an invalidation connection to the same node subscribed to
 * `__redis__:invalidate`. A key is then invalidated by the node that served its read, wherever
 * the read was routed (MOVED and ASK included): tracking is set up on every node the client
 * connects to, replicas too, and a node it has not set up yet makes the whole cache untrusted.
 *
 * The cache is trusted only while every node is tracked and, at most STALE_MS ago, answered a
 * heartbeat (a PING on its invalidation connection and a ROLE on its data connection) with the role
 * the slot map gives it. Any lost connection, a node added or removed, a role that differs from the
 * map, or a slot map that changed (in this client or in the gateway's main client, which learns of
 * MOVED first) drops the whole cache; it fills again once the maps agree and every node is tracked.
 *
 * Fail-over: a replica promoted over a master that is still reachable takes writes the old master's
 * invalidation connection never reports. `settle` closes that: the replica that made a change waits,
 * when it saw the slot map change less than STALE_MS ago, until STALE_MS has passed since; by then
 * every other replica's trust in the old master, which rests on a heartbeat sent before the switch,
 * has run out.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { RedisClient } from '../lib/redis-client.js'
import type { CacheTracker } from './session-cache.js'
import type { InvalidationListener } from './invalidation-tracker.js'

const CHANNEL = '__redis__:invalidate'
const HEARTBEAT_MS = 250
const STALE_MS = 1000
const LOST_MS = 2000
const SLOTS = 16384

interface NodeState {
  /** host:port, as the Cluster client names the node. */
  key: string
  /** The data client's connection to the node (created and replaced by the Cluster client). */
  conn: Redis
  inv: Redis
  /** The invalidation connection's client id once it is subscribed (until it closes). */
  invId: number | undefined
  tracking: boolean
  /** When the last heartbeat that found the node as the slot map says was sent (ms). */
  lastOk: number
  /** Bumped at each close of either connection: a setup that saw one in between is void. */
  epoch: number
  setup: Promise<void>
  removed: boolean
}

/** Each slot's master as a client's slot map has it (the map ioredis keeps: slot -> node keys, master first). */
function mastersOf (slots: string[][]): string[] {
  const out = new Array<string>(SLOTS)
  for (let i = 0; i < SLOTS; i++) out[i] = slots[i]?.[0] ?? ''
  return out
}

function sameMasters (slots: string[][], known: string[]): boolean {
  for (let i = 0; i < SLOTS; i++) if ((slots[i]?.[0] ?? '') !== known[i]) return false
  return true
}

export class ClusterInvalidationTracker implements CacheTracker {
  readonly data: Cluster
  readonly #main: Cluster
  readonly #invOptions: RedisOptions
  readonly #log: FastifyBaseLogger
  readonly #listener: InvalidationListener
  readonly #nodes = new Map<string, NodeState>()
  #generation = 0
  #tracking = false
  /** The oldest node's last good heartbeat + STALE_MS: the cache is not trusted after it. */
  #trustedUntil = 0
  /** The slot map (each slot's master) the cache was filled under; empty until the first. */
  #known: string[] = []
  /** When a change of the slot map was last seen (ms). */
  #changedAt = 0
  #timer: NodeJS.Timeout | undefined
  #closed = false

  /**
   * `main`: the gateway's client (its slot map is compared with the data client's); `data`: a
   * second Cluster client, lazy, for the tracked reads; `invOptions`: options of the per-node
   * invalidation connections (host and port are added).
   */
  constructor (main: Cluster, data: Cluster, invOptions: RedisOptions, listener: InvalidationListener, log: FastifyBaseLogger) {
    this.#main = main
    this.data = data
    this.#invOptions = invOptions
    this.#listener = listener
    this.#log = log
    data.on('error', (err: Error) => { log.debug({ err: { message: err.message } }, 'session cache cluster error') })
    data.on('+node', (conn: Redis) => { this.#addNode(conn) })
    data.on('-node', (conn: Redis) => { this.#removeNode(conn) })
    data.on('refresh', () => { this.#checkTopology() })
    data.on('ready', () => {
      for (const conn of data.nodes('all')) this.#addNode(conn)
      this.#checkTopology()
    })
    data.on('close', () => { this.#lose() })
  }

  start (): void {
    // A fail-over just before this replica started is one it could not see: its changes wait as after one.
    this.#changedAt = Date.now()
    this.data.connect().catch(() => { /* retried by the cluster retry strategy */ })
    this.#timer = setInterval(() => { this.#heartbeat() }, HEARTBEAT_MS)
    this.#timer.unref()
  }

  generation (now: number = Date.now()): number | null {
    return this.#tracking && now < this.#trustedUntil ? this.#generation : null
  }

  stillValid (gen: number): boolean {
    return this.#tracking && this.#generation === gen
  }

  /**
   * A command on the changed key's slot, answered by the node that made the change after it (so
   * that node has written the invalidations, as with one Redis); then, if the slot map changed
   * less than STALE_MS ago (or changes now: the main client was just redirected), a wait until
   * STALE_MS after that change.
   */
  async settle (main: RedisClient, key: string): Promise<void> {
    await main.exists(key)
    if (this.#known.length > 0 && (!sameMasters(this.#main.slots, this.#known) || !sameMasters(this.data.slots, this.#known))) {
      this.#topologyChanged()
    }
    for (let wait = this.#changedAt + STALE_MS - Date.now(); wait > 0; wait = this.#changedAt + STALE_MS - Date.now()) {
      await sleep(wait)
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    this.#lose()
    const invs = [...this.#nodes.values()].map((n) => n.inv)
    this.#nodes.clear()
    await Promise.all([
      this.data.quit().catch(() => { this.data.disconnect() }),
      ...invs.map(async (c) => { await c.quit().catch(() => { c.disconnect() }) })
    ])
  }

  /** Nodes tracked and answering: for /metrics. */
  get trackedNodes (): number {
    let n = 0
    for (const node of this.#nodes.values()) if (node.tracking) n++
    return n
  }

  #lose (): void {
    const wasTracking = this.#tracking
    this.#tracking = false
    this.#generation++
    this.#listener(null)
    if (wasTracking && !this.#closed) this.#log.warn('session cache: cluster invalidations lost; every request checks Redis until back')
  }

  #topologyChanged (): void {
    this.#changedAt = Date.now()
    this.#known = []
    this.#lose()
    this.#log.info('session cache: the cluster slot map changed; cache dropped')
    this.data.refreshSlotsCache()
    this.#main.refreshSlotsCache()
  }

  /** A refreshed slot map: a change drops the cache; the first one (or the first after a change) is adopted. */
  #checkTopology (): void {
    if (this.#closed || this.data.status !== 'ready') return
    if (this.#known.length === 0) {
      const masters = mastersOf(this.data.slots)
      if (this.#main.status === 'ready' && masters.some((m) => m !== '') && sameMasters(this.#main.slots, masters)) this.#known = masters
    } else if (!sameMasters(this.data.slots, this.#known)
      || (this.#main.status === 'ready' && !sameMasters(this.#main.slots, this.#known))) {
      this.#topologyChanged()
    }
    this.#update()
  }

  #addNode (conn: Redis): void {
    const key = `${conn.options.host ?? ''}:${conn.options.port ?? ''}`
    const existing = this.#nodes.get(key)
    if (existing?.conn === conn || this.#closed) return
    if (existing !== undefined) this.#drop(existing)
    const inv = new Redis({
      ...this.#invOptions,
      host: conn.options.host,
      port: conn.options.port,
      lazyConnect: true,
      // Subscriptions are made again by #establish, after the new connection's id is known.
      autoResubscribe: false,
      enableAutoPipelining: false,
      connectionName: 'gw-invalidations'
    })
    const node: NodeState =
      { key, conn, inv, invId: undefined, tracking: false, lastOk: 0, epoch: 0, setup: Promise.resolve(), removed: false }
    this.#nodes.set(key, node)
    const closed = (): void => {
      node.epoch++
      node.tracking = false
      this.#lose()
    }
    inv.on('error', (err: Error) => { this.#log.debug({ err: { message: err.message } }, 'session cache invalidation connection error') })
    inv.on('close', () => { node.invId = undefined; closed() })
    conn.on('close', closed)
    inv.on('ready', () => { this.#schedule(node) })
    conn.on('ready', () => { this.#schedule(node) })
    inv.on('messageBuffer', (channel: Buffer, message: Buffer[] | Buffer | null) => {
      if (channel.toString() !== CHANNEL) return
      // A null message (flush of the node's database) invalidates everything.
      if (message === null) this.#listener(null)
      else this.#listener(Array.isArray(message) ? message.map((k) => k.toString()) : [message.toString()])
    })
    // A node not tracked yet: the cache is not trusted until it is.
    this.#lose()
    inv.connect().catch(() => { /* retried by the retry strategy */ })
    this.#schedule(node)
  }

  #removeNode (conn: Redis): void {
    for (const node of this.#nodes.values()) if (node.conn === conn) this.#drop(node)
    this.#lose()
    this.#update()
  }

  #drop (node: NodeState): void {
    node.removed = true
    node.tracking = false
    node.epoch++
    this.#nodes.delete(node.key)
    node.inv.disconnect()
  }

  #schedule (node: NodeState): void {
    node.setup = node.setup.then(() => this.#establish(node)).catch((err: unknown) => {
      this.#log.warn({ err, node: node.key }, 'session cache: tracking setup failed on a cluster node; every request checks Redis')
    })
  }

  async #establish (node: NodeState): Promise<void> {
    if (this.#closed || node.removed || node.tracking || node.inv.status !== 'ready') return
    const epoch = node.epoch
    if (node.invId === undefined) {
      const id = Number(await node.inv.client('ID'))
      await node.inv.subscribe(CHANNEL)
      if (epoch !== node.epoch) return
      node.invId = id
    }
    // The data connection connects on its first command (the Cluster client's node connections are lazy).
    await node.conn.call('CLIENT', 'TRACKING', 'on', 'REDIRECT', String(node.invId))
    const sent = Date.now()
    const ok = await this.#probe(node)
    if (!ok || epoch !== node.epoch || node.removed || node.conn.status !== 'ready' || node.inv.status !== 'ready') return
    node.lastOk = sent
    node.tracking = true
    this.#update()
  }

  /** PING on the invalidation connection and ROLE on the data connection; false when the role is not the map's. */
  async #probe (node: NodeState): Promise<boolean> {
    const [, role] = await Promise.all([node.inv.ping(), node.conn.call('ROLE')])
    const actual = Array.isArray(role) ? String(role[0]) : ''
    // ioredis marks the connections it holds to replicas read-only.
    const expected = node.conn.options.readOnly === true ? 'slave' : 'master'
    if (actual === expected) return true
    if (!this.#closed && !node.removed) this.#topologyChanged()
    return false
  }

  /** Tracking is on when the data client is ready, every node it holds is tracked, and both clients' slot maps are the known one. */
  #update (): void {
    if (this.#closed) return
    let ready = this.data.status === 'ready' && this.#known.length > 0
    let oldest = Infinity
    if (ready) {
      const conns = this.data.nodes('all')
      ready = conns.length > 0
      for (const conn of conns) {
        const node = this.#nodes.get(`${conn.options.host ?? ''}:${conn.options.port ?? ''}`)
        if (node?.conn !== conn || !node.tracking) { ready = false; break }
        oldest = Math.min(oldest, node.lastOk)
      }
    }
    ready &&= sameMasters(this.data.slots, this.#known) && sameMasters(this.#main.slots, this.#known)
    if (!ready) {
      if (this.#tracking) this.#lose()
      return
    }
    this.#trustedUntil = oldest + STALE_MS
    if (!this.#tracking) {
      this.#generation++
      this.#tracking = true
      this.#log.info({ nodes: this.#nodes.size }, 'session cache: tracking on (every cluster node)')
    }
  }

  #heartbeat (): void {
    if (this.#closed) return
    if (this.data.status === 'ready') {
      for (const conn of this.data.nodes('all')) {
        if (this.#nodes.get(`${conn.options.host ?? ''}:${conn.options.port ?? ''}`)?.conn !== conn) this.#addNode(conn)
      }
    }
    if (this.#known.length === 0) this.#checkTopology()
    else if (!sameMasters(this.data.slots, this.#known) || !sameMasters(this.#main.slots, this.#known)) this.#topologyChanged()
    const now = Date.now()
    for (const node of this.#nodes.values()) {
      if (!node.tracking) continue
      if (now - node.lastOk > LOST_MS) {
        this.#log.warn({ node: node.key }, 'session cache: a cluster node stopped answering; connecting again')
        node.tracking = false
        node.epoch++
        this.#lose()
        node.inv.disconnect(true)
        continue
      }
      const epoch = node.epoch
      this.#probe(node).then((ok) => {
        if (ok && epoch === node.epoch) node.lastOk = now
        this.#update()
      }, () => { /* the next beat decides */ })
    }
    this.#update()
  }
}
