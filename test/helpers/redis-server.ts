/**
 * Real redis-server processes for the tests: own port, no persistence, killed at the end.
 * Fault tests may stop and restart them (same port) to simulate an outage.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, Socket } from 'node:net'
import { Cluster, Redis } from 'ioredis'

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

/** Resolves when a TCP connect to the port succeeds and Redis answers PING. */
async function pingOnce (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
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
  /** Kills the server (SIGKILL): an outage. */
  kill: () => Promise<void>
  /** Starts it again on the same port, empty. */
  restart: () => Promise<void>
  stop: () => Promise<void>
}

export async function startRedis (extraArgs: string[] = []): Promise<RedisProcess> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const launch = async (): Promise<void> => {
    child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--protected-mode', 'no', '--daemonize', 'no', '--loglevel', 'warning', ...extraArgs
    ], { stdio: 'ignore' })
    await waitFor(() => pingOnce(port), `redis-server on port ${port}`)
  }
  const kill = async (): Promise<void> => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null) return
    await new Promise<void>((resolve) => { c.once('exit', () => resolve()); c.kill('SIGKILL') })
  }
  await launch()
  process.once('exit', () => { child?.kill('SIGKILL') })
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
    kill,
    restart: launch,
    stop: kill
  }
}
