/**
 * The built services as processes, as an operator runs them: `node dist/...` configured by
 * environment only, polled for readiness (never fixed sleeps), stopped with SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { killGroup, spawnTracked } from '../../dev-tools/child-processes.js'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor } from './redis-server.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * Redis command timeout of every gateway a test starts (in process or as a process). The product's
 * 500 ms default would take an event loop stalled by a busy machine for a Redis outage; fault
 * tests kill Redis, which fails commands at once, without waiting for this.
 */
export const TEST_REDIS_COMMAND_TIMEOUT_MS = '3000'

export interface Proc { name: string, child: ChildProcess, output: () => string }

export function start (name: string, script: string, env: Record<string, string>): Proc {
  // Its own process group, killed when this test process ends, whatever ends it.
  const child = spawnTracked(process.execPath, [join(ROOT, script)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'development', REDIS_COMMAND_TIMEOUT_MS: TEST_REDIS_COMMAND_TIMEOUT_MS, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  }, false)
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-8_000) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return { name, child, output: () => output }
}

/** Resolves with the exit code once the process has exited. */
export function exited (proc: Proc): Promise<number | null> {
  const { child } = proc
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

/** SIGTERM, then SIGKILL if the process is still there after 15 s. */
export async function stop (proc: Proc): Promise<void> {
  const { child } = proc
  if (child.exitCode !== null || child.signalCode !== null) return
  const done = exited(proc)
  child.kill('SIGTERM')
  const killer = setTimeout(() => killGroup(child), 15_000)
  await done
  clearTimeout(killer)
}

/** Newest modification time of the TypeScript sources the build compiles. */
function newestSource (dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path))
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs)
  }
  return newest
}

/** `make test` builds first; run alone, a test builds when dist/ is missing or older than the sources. */
export function ensureBuilt (): void {
  const entry = join(ROOT, 'dist/src/server.js')
  const sourcesTime = Math.max(newestSource(join(ROOT, 'src')), newestSource(join(ROOT, 'services')))
  if (existsSync(entry) && statSync(entry).mtimeMs >= sourcesTime) return
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' })
  if (build.status !== 0) throw new Error(`npm run build failed with status ${String(build.status)}`)
}

export async function answers (url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) })
    return res.status === 200
  } catch {
    return false
  }
}

/** Waits until the process answers 200 on `url`; fails at once if it exits. */
export async function waitUntilAnswering (proc: Proc, url: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited with ${proc.child.exitCode}: ${proc.output()}`)
    return answers(url)
  }, `${proc.name} ${url}`, timeoutMs)
}

export interface RunResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/**
 * Runs a built script (`dist/...`) to its end with exactly `env` (plus PATH and HOME), and collects
 * its output. A process still running after 60 s is killed: the caller's assertions then fail.
 */
export function runToExit (script: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, script), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('error', reject)
    child.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }) })
  })
}
