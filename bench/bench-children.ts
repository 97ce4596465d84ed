/**
 * The benchmarks' server processes (bench/bench-servers.ts, forked): started, awaited by message,
 * stopped, and killed when the benchmark's process exits. Shared by bench/proxy-bench.ts and
 * bench/direct-path-ab.ts.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ChildMessage, ParentMessage, ServerSpec } from './bench-servers.js'
import { gatewayNodeFlags } from './gateway-node-flags.js'

export type ServerRole = 'upstream' | 'bare' | 'bare-check' | 'lean-check' | 'gateway' | 'orders' | 'users'

const children: ChildProcess[] = []
const serversScript = fileURLToPath(new URL('./bench-servers.js', import.meta.url))

process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/** The child's next message of `type`; rejects on its error message or its exit. */
export function nextMessage (child: ChildProcess, name: string, type: ChildMessage['type']): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ChildMessage): void => {
      if (message.type === 'error') { cleanup(); reject(new Error(`${name}: ${message.message}`)); return }
      if (message.type === type) { cleanup(); resolve(message) }
    }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`${name} exited (${String(code)}) before '${type}'`)) }
    const cleanup = (): void => { child.off('message', onMessage); child.off('exit', onExit) }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

/**
 * Forks a server of `role` and waits until it listens. A gateway gets the Node/V8 flags it is
 * started with (bin/node-flags.sh) before `execArgv`, unless `shippedFlags` is false.
 */
export async function startServer (name: string, role: ServerRole, spec: ServerSpec = {}, execArgv: string[] = [],
  shippedFlags = role === 'gateway'): Promise<{ name: string, child: ChildProcess, url: string }> {
  const flags = shippedFlags ? [...gatewayNodeFlags(), ...execArgv] : execArgv
  const child = fork(serversScript, [role, JSON.stringify(spec)], { execArgv: flags, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  const ready = await nextMessage(child, name, 'ready') as { url: string }
  return { name, child, url: ready.url }
}

/** A server's counters (bench/bench-servers.ts): CPU µs, GC pause µs and bytes allocated since it started. */
export type CpuReading = Extract<ChildMessage, { type: 'cpu' }>

/** Asks the server for its counters. */
export async function cpuReading (child: ChildProcess, name: string): Promise<CpuReading> {
  const reply = nextMessage(child, name, 'cpu')
  child.send({ type: 'cpu' } satisfies ParentMessage)
  return await reply as CpuReading
}

/** CPU (µs), GC pause (ms per 1,000 requests) and allocation (KB) per request between two readings. */
export function perRequestOf (before: CpuReading, after: CpuReading, completed: number):
  { cpuPerRequest: number, gcMsPer1000: number, allocKbPerRequest: number } {
  return {
    cpuPerRequest: (after.micros - before.micros) / completed,
    gcMsPer1000: (after.gcMicros - before.gcMicros) / completed,
    allocKbPerRequest: (after.allocatedBytes - before.allocatedBytes) / completed / 1024
  }
}

/** Asks a server to stop; kills it after 5 s. */
export async function stopServer (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.send({ type: 'stop' } satisfies ParentMessage)
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}
