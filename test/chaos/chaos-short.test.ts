/**
 * The short chaos soak of `make test` (the long one is `make chaos`): two gateway replicas and Redis
 * under mixed load for 45 s, Redis and then the replicas killed with SIGKILL in turn, every 10 s.
 * Every invariant of dev-tools/chaos-soak.ts must hold; the 5 s recovery goal is a timing figure,
 * measured by `make chaos` and RELIABILITY.md, so here it only has to come back (60 s bound); for the
 * same reason the replicas get the test suite's Redis command timeout.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, TEST_REDIS_COMMAND_TIMEOUT_MS, ensureBuilt } from '../helpers/processes.js'


t.test('short chaos soak: every invariant holds', async (t) => {
  ensureBuilt()
  const soak = join(ROOT, 'dist/dev-tools/chaos-soak.js')
  if (!existsSync(soak)) {
    const build = spawn('npx', ['tsc', '-p', 'tsconfig.tools.json'], { cwd: ROOT, stdio: 'inherit' })
    await new Promise((resolve) => build.once('exit', resolve))
  }
  const child = spawn(process.execPath, [soak], {
    cwd: ROOT,
    env: { ...process.env, CHAOS_SECONDS: process.env.CHAOS_SHORT_SECONDS ?? '45', FAULT_INTERVAL: '10', CHAOS_WORKERS: '4',
      CHAOS_RECOVERY_GOAL_MS: '60000', REDIS_COMMAND_TIMEOUT_MS: TEST_REDIS_COMMAND_TIMEOUT_MS },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  t.equal(code, 0, `the soak exits 0\n${output.slice(-4_000)}`)
  for (const invariant of ['no 500 ever', 'outside the fault windows no accepted request is lost',
    'no revoked or logged-out token is ever accepted again',
    'no refresh token ever has two different successors', 'every answer is a documented status and code',
    'after each fault, service is back',
    'every logged-out session\'s WebSocket closed within 5 s']) {
    t.match(output, new RegExp(`^ok +${invariant}`, 'm'), invariant)
  }
  // Faults come in turn (Redis, replica 0, replica 1), one every 10 s after the previous recovery.
  t.match(output, /^fault 1: kill -9 redis; service back/m, 'Redis was killed and service came back')
})
