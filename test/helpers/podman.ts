/**
 * podman for the image tests: the test's own containers.conf (scripts/podman/containers.conf),
 * containers labelled with this run so that teardown, a process exit and
 * scripts/kill-run-leftovers.sh all remove them, even after a failed or timed-out test file.
 */
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { onExit } from 'signal-exit'
import { ROOT } from './processes.js'

const run = promisify(execFile)

export const PODMAN_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? join(ROOT, 'scripts/podman/containers.conf')
}
export const GATEWAY_IMAGE = process.env.GATEWAY_IMAGE ?? 'localhost/auth-gateway:latest'
export const REDIS_IMAGE = process.env.REDIS_IMAGE ?? 'localhost/auth-gateway-redis-base:trixie'
/** Label on every container of this test process. */
export const RUN_LABEL = `auth-gateway-test=${process.pid}-${randomBytes(3).toString('hex')}`
/** Label of the whole `make test` run (scripts/kill-run-leftovers.sh removes what a killed file left). */
export const SUITE_LABEL = `auth-gateway-test-run=${process.env.AUTH_GATEWAY_RUN_ID ?? 'adhoc'}`
/** podman run arguments that label a container with both. */
export const LABELS = ['--label', RUN_LABEL, '--label', SUITE_LABEL]

export interface Output { code: number, stdout: string, stderr: string }

export async function podman (args: string[], timeoutMs = 120_000): Promise<Output> {
  try {
    const { stdout, stderr } = await run('podman', args, { env: PODMAN_ENV, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number | string, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) }
  }
}

/** Removes every container (and pod) of this test process; synchronous so that it also works on exit. */
export function removeRunContainers (): void {
  try {
    execFileSync('podman', ['rm', '--force', '--time', '0', '--filter', `label=${RUN_LABEL}`],
      { env: PODMAN_ENV, stdio: 'ignore', timeout: 60_000 })
  } catch { /* nothing left, or podman gone */ }
}
onExit(() => { removeRunContainers() }, { alwaysLast: true })

export async function imageExists (image: string): Promise<boolean> {
  return (await podman(['image', 'exists', image])).code === 0
}

export function uniqueName (prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`
}
