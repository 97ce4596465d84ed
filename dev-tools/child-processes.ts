/**
 * Processes that the tests, the bench and the chaos soak start (redis-server, gateway replicas):
 * each in a process group of its own, killed by group in teardown and whenever this process ends
 * (normal exit, uncaught error, SIGINT/SIGTERM/SIGHUP from tap's timeout), so none outlives a
 * failed or timed-out test file.
 *
 * The last net, for a runner killed with SIGKILL: every child carries AUTH_GATEWAY_RUN_ID in its
 * environment; scripts/kill-run-leftovers.sh kills the processes of a run by that marker.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { onExit } from 'signal-exit'

const live = new Set<ChildProcess>()

/** SIGKILL to the child's whole process group (it is the leader: spawned detached). */
export function killGroup (child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try { child.kill(signal) } catch { /* already gone */ }
  }
}

let hooked = false
function hookExit (): void {
  if (hooked) return
  hooked = true
  onExit(() => {
    for (const child of live) killGroup(child)
    live.clear()
  }, { alwaysLast: true })
}

/**
 * spawn() in a new process group, tracked until it exits. `unref` (default true): the child alone
 * does not keep this process alive (waiting for its exit with exitOf does).
 */
export function spawnTracked (command: string, args: readonly string[], options: SpawnOptions = {}, unref = true): ChildProcess {
  hookExit()
  const env = { ...(options.env ?? process.env) }
  if (process.env.AUTH_GATEWAY_RUN_ID !== undefined) env.AUTH_GATEWAY_RUN_ID = process.env.AUTH_GATEWAY_RUN_ID
  const child = spawn(command, args, { ...options, env, detached: true })
  live.add(child)
  child.once('exit', () => live.delete(child))
  // A long-lived child (a pooled Redis Cluster) must not keep its parent alive on its own; the
  // parent is held while it waits for an exit (exitOf) and by its own sockets otherwise.
  if (unref) child.unref()
  return child
}

/** Resolves once the child has exited (at once when it already has). */
export function exitOf (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  // spawnTracked unrefs the child: while someone waits for its exit, it must hold the event loop.
  child.ref()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** SIGKILL to the group and wait for the exit. */
export async function killAndWait (child: ChildProcess): Promise<void> {
  const done = exitOf(child)
  killGroup(child)
  await done
}
