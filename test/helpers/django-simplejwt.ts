/**
 * A stock djangorestframework-simplejwt service (test/django/simplejwt_project) as a process:
 * Debian's /usr/bin/gunicorn (its packages are for /usr/bin/python3, not the python3 on PATH),
 * on a free port, polled until it answers, stopped with SIGTERM in teardown.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, exited, type Proc } from './processes.js'
import { freePort, waitFor } from './redis-server.js'

export const DJANGO_DIR = join(ROOT, 'test/django')
const PYTHON = '/usr/bin/python3'
const GUNICORN = '/usr/bin/gunicorn'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface DjangoService { url: string, port: number, proc: Proc }

function baseEnv (env: Record<string, string>): Record<string, string> {
  return {
    PATH: '/usr/bin:/bin',
    PYTHONDONTWRITEBYTECODE: '1',
    PYTHONPATH: DJANGO_DIR,
    DJANGO_SETTINGS_MODULE: 'simplejwt_project.settings',
    ...env
  }
}

/** A temporary SQLite database with the tables and these users (`id:username:password`). */
export function seedDatabase (t: Teardown, env: Record<string, string>, users: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-django-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const db = join(dir, 'db.sqlite3')
  const res = spawnSync(PYTHON, [join(DJANGO_DIR, 'simplejwt_project/seed.py'), ...users],
    { env: baseEnv({ ...env, DJANGO_DB: db }), encoding: 'utf8', timeout: 120_000 })
  if (res.status !== 0) throw new Error(`seeding the Django database failed: ${res.stderr}`)
  return db
}

/** Starts gunicorn with the project; `port` may be chosen beforehand (the gateway must know it first). */
export async function startDjango (t: Teardown, env: Record<string, string>, port?: number): Promise<DjangoService> {
  const p = port ?? await freePort()
  const child = spawn(GUNICORN, ['--bind', `127.0.0.1:${p}`, '--workers', '1', '--chdir', DJANGO_DIR, '--log-level', 'warning',
    'simplejwt_project.wsgi:application'], {
    cwd: DJANGO_DIR,
    env: baseEnv(env),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-8_000) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const proc: Proc = { name: `django-${env.SIMPLEJWT_MODE ?? 'gateway'}`, child, output: () => output }
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const done = exited(proc)
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await done
    clearTimeout(killer)
  })
  const url = `http://127.0.0.1:${p}`
  // Any HTTP answer means Django is up (the protected view answers 401 without a token).
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`gunicorn exited with ${child.exitCode}: ${output}`)
    try {
      await (await fetch(`${url}/api/django/whoami`, { signal: AbortSignal.timeout(2_000) })).text()
      return true
    } catch {
      return false
    }
  }, `gunicorn on ${url}`, 60_000)
  return { url, port: p, proc }
}
