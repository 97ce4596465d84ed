/**
 * Django projects of the end-to-end tests, run with Debian's /usr/bin/python3 and /usr/bin/gunicorn
 * (the pyenv python3 first on PATH has no Django): manage.py commands to their end, and gunicorn
 * as a process (stopped with SIGTERM like the others, see processes.ts).
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, type Proc } from './processes.js'
import { waitFor } from './redis-server.js'

export const PYTHON = '/usr/bin/python3'
export const GUNICORN = '/usr/bin/gunicorn'
export const DJANGO_ADAPTER_PATH = join(ROOT, 'integrations/django')

/** Why Django cannot run here (`make test-packages` installs what is missing), or null. */
export function djangoMissing (): string | null {
  if (!existsSync(PYTHON) || !existsSync(GUNICORN)) return `${PYTHON} or ${GUNICORN} missing (make test-packages)`
  const probe = spawnSync(PYTHON, ['-c', 'import django, jwt, cryptography'], { encoding: 'utf8' })
  return probe.status === 0 ? null : `Debian's python3-django/python3-jwt missing: ${probe.stderr.trim()}`
}

function pythonEnv (env: Record<string, string>): Record<string, string> {
  return { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', PYTHONPATH: DJANGO_ADAPTER_PATH, PYTHONDONTWRITEBYTECODE: '1', ...env }
}

/** `manage.py args` in `projectDir` to its end (blocking: only before servers run in-process); throws with its output when it fails. */
export function manage (projectDir: string, args: string[], env: Record<string, string>,
  timeoutMs = 300_000): { stdout: string, stderr: string } {
  const run = spawnSync(PYTHON, ['manage.py', ...args], { cwd: projectDir, env: pythonEnv(env), encoding: 'utf8', timeout: timeoutMs })
  if (run.status !== 0) throw new Error(
    `manage.py ${args.join(' ')} failed (${String(run.status ?? run.signal)}): ${run.stdout}\n${run.stderr}`)
  return { stdout: run.stdout, stderr: run.stderr }
}

/** `manage.py args` as a process (for long runs such as the test runner), with its exit status. */
export function manageAsync (projectDir: string, args: string[],
  env: Record<string, string>): Promise<{ code: number | null, output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['manage.py', ...args], { cwd: projectDir, env: pythonEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 280_000)
    child.once('error', reject)
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, output }) })
  })
}

/** gunicorn serving `wsgi` (e.g. `identity_project.wsgi:application`) from `projectDir` on 127.0.0.1:port. */
export function startGunicorn (projectDir: string, wsgi: string, port: number, env: Record<string, string>): Proc {
  const child = spawn(GUNICORN, [
    '--bind', `127.0.0.1:${port}`, '--workers', '2', '--chdir', projectDir, '--pythonpath', DJANGO_ADAPTER_PATH,
    '--graceful-timeout', '5', '--access-logfile', '-', wsgi
  ], { cwd: projectDir, env: pythonEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-8_000) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  return { name: 'gunicorn', child, output: () => output }
}

/** Waits until `url` gives any HTTP answer (Django has no route that answers 200 without an assertion). */
export async function waitUntilServing (proc: Proc, url: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited with ${proc.child.exitCode}: ${proc.output()}`)
    try {
      await fetch(url, { signal: AbortSignal.timeout(1_000) })
      return true
    } catch {
      return false
    }
  }, `${proc.name} ${url}`, timeoutMs)
}
