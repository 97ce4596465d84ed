/**
 * Real redis-server processes for the tests, the bench and the chaos soak: own port, no
 * persistence, killed at the end. Fault tests may stop and restart them (same port) to simulate an
 * outage.
 *
 * Robust on a busy machine: ports are drawn below the kernel's ephemeral range (so that no
 * outgoing connection and no `listen(0)` of another test holds them) and a start that loses a port
 * race (address in use) is retried on another port; start-up waits are generous; each server runs
 * in its own process group and is killed by group in teardown and when this process ends.
 */
import { createServer, Socket } from 'node:net'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { Cluster, Redis } from 'ioredis'
import { killAndWait, spawnTracked } from './child-processes.js'

/** A free port from the kernel (listen on 0). For servers that can listen on 0 themselves, prefer that. */
export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/**
 * Ports for redis-server: [10000, 22000), below the ephemeral range (32768+), with the cluster bus
 * port (+10000) below it as well. Random, so that parallel test files rarely meet; a clash is retried.
 */
export function candidatePort (): number {
  return 10_000 + Math.floor(Math.random() * 12_000)
}

/** True when a TCP connect to the port succeeds and Redis answers PING. */
export async function pingOnce (port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(1_000, () => done(false))
    socket.once('error', () => done(false))
    socket.connect(port, host, () => socket.write('PING\r\n'))
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')))
  })
}

/** Polls a condition until it holds (fault tests wait for conditions, never for fixed sleeps). */
export async function waitFor (condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export interface RedisProcess {
  port: number
  url: string
  /** The gateway's environment for this Redis: REDIS_URL, or REDIS_CLUSTER_NODES for a cluster. */
  env: Record<string, string>
  /** A client for inspecting the data from a test (a Cluster client for a cluster). */
  client: () => Redis | Cluster
  /** Keys matching a pattern, over every node. */
  keys: (pattern: string) => Promise<string[]>
  /** FLUSHALL on every node (data loss; a Cluster client's FLUSHALL reaches one node only). */
  flushAll: () => Promise<void>
  /** Kills the server (SIGKILL): an outage. */
  kill: () => Promise<void>
  /** Starts it again on the same port, empty. */
  restart: () => Promise<void>
  stop: () => Promise<void>
}

/** How long a redis-server may take to answer PING after its start (a loaded CI machine is slow). */
const START_TIMEOUT_MS = Number(process.env.TEST_REDIS_START_TIMEOUT_MS ?? 60_000)
const PORT_ATTEMPTS = 8

class PortInUse extends Error {}

/** Starts redis-server on `port` and waits for PONG; PortInUse when it lost the port. */
async function launchOn (port: number, dir: string, extraArgs: readonly string[]): Promise<ChildProcess> {
  const logfile = join(dir, `redis-${port}.log`)
  const child = spawnTracked('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--protected-mode', 'no', '--daemonize', 'no', '--loglevel', 'warning', '--logfile', logfile,
    '--dir', dir, ...extraArgs
  ], { stdio: 'ignore' })
  let exited = false
  child.once('exit', () => { exited = true })
  const log = (): string => { try { return readFileSync(logfile, 'utf8') } catch { return '' } }
  try {
    await waitFor(async () => {
      if (exited) {
        const text = log()
        if (/in use|EADDRINUSE/i.test(text)) throw new PortInUse(text)
        throw new Error(`redis-server on port ${port} exited: ${text.slice(-2_000)}`)
      }
      return pingOnce(port)
    }, `redis-server on port ${port}`, START_TIMEOUT_MS)
  } catch (err) {
    await killAndWait(child)
    throw err
  }
  return child
}

/**
 * Starts a redis-server on a free port (retried on a clash), with `extraArgs` after the defaults.
 * `extraArgs` may contain `{port}`, replaced by the port (cluster config files).
 */
export async function startRedis (extraArgs: string[] = []): Promise<RedisProcess> {
  // redis-server rewrites its environment (process title), so the run marker of child-processes.ts
  // is not visible on it: its working folder carries the run id instead (scripts/kill-run-leftovers.sh).
  const dir = mkdtempSync(join(tmpdir(), `gw-redis-${process.env.AUTH_GATEWAY_RUN_ID ?? 'adhoc'}-`))
  const argsFor = (port: number): string[] => extraArgs.map((a) => a.replaceAll('{port}', String(port)))
  let child: ChildProcess | undefined
  let port = 0
  for (let attempt = 1; ; attempt++) {
    port = candidatePort()
    try {
      child = await launchOn(port, dir, argsFor(port))
      break
    } catch (err) {
      if (!(err instanceof PortInUse) || attempt >= PORT_ATTEMPTS) {
        rmSync(dir, { recursive: true, force: true })
        throw err
      }
    }
  }
  const kill = async (): Promise<void> => {
    const c = child
    child = undefined
    if (c !== undefined) await killAndWait(c)
  }
  // The same port again: another process may have taken it meanwhile, so this retries for a while.
  const restart = async (): Promise<void> => {
    await kill()
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      try {
        child = await launchOn(port, dir, argsFor(port))
        return
      } catch (err) {
        if (!(err instanceof PortInUse) || Date.now() > deadline) throw err
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }
  const url = `redis://127.0.0.1:${port}`
  return {
    port,
    url,
    env: { REDIS_URL: url },
    client: () => new Redis(url),
    keys: async (pattern) => {
      const client = new Redis(url)
      try { return await client.keys(pattern) } finally { client.disconnect() }
    },
    flushAll: async () => {
      const client = new Redis(url)
      try { await client.flushall() } finally { client.disconnect() }
    },
    kill,
    restart,
    stop: async () => {
      await kill()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
