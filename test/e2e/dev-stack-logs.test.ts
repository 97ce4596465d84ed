/**
 * `make run`'s logs (scripts/dev-stack.sh): human-readable lines from pino-pretty when its output
 * is a terminal (a pseudo-terminal from util-linux `script` here), the programs' JSON lines
 * otherwise. Ctrl-C (on the terminal) and SIGINT (without one) stop everything it started.
 */
import t from 'tap'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startRedis, waitFor } from '../helpers/redis-server.js'
import { ROOT, ensureBuilt, answers } from '../helpers/processes.js'
import { exitOf, killGroup, spawnTracked } from '../../dev-tools/child-processes.js'
import { generatePrivateJwk } from '../../src/tokens/key-ring.js'

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g

async function stackEnv (t: { teardown: (fn: () => unknown) => void }): Promise<{ env: NodeJS.ProcessEnv, url: string }> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const dir = await mkdtemp(join(tmpdir(), 'gw-dev-stack-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keys = join(dir, 'jwks.json')
  await writeFile(keys, JSON.stringify({ keys: [await generatePrivateJwk()] }), { mode: 0o600 })
  const port = await freePort()
  return {
    url: `http://127.0.0.1:${port}`,
    env: { ...process.env, REDIS_URL: redis.url, JWT_KEYS_FILE: keys, PORT: String(port), USERS_PORT: String(await freePort()),
      ORDERS_PORT: String(await freePort()), LOG_FORMAT: '' }
  }
}

function collect (child: ChildProcess): () => string {
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
  return () => out
}

t.test('on a terminal: pino-pretty lines; Ctrl-C stops the stack', async (t) => {
  if (spawnSync('script', ['--version']).error !== undefined) { t.fail('util-linux script is missing'); return }
  ensureBuilt()
  const { env, url } = await stackEnv(t)
  // `script` gives the stack a pseudo-terminal and copies its stdin to it (Ctrl-C included).
  const child = spawnTracked('script', ['-qfec', 'bash scripts/dev-stack.sh', '/dev/null'],
    { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] }, false)
  t.teardown(() => killGroup(child))
  const output = collect(child)
  await waitFor(() => answers(`${url}/healthz`), 'the gateway of the stack', 60_000)
  // The stubs print a listening line too: wait for the gateway's own (its URL).
  await waitFor(() => output().replace(ANSI, '').split(/\r?\n/).some((l) => l.includes('Server listening') && l.includes(url)),
    'the gateway\'s listening line')
  const lines = output().replace(ANSI, '').split(/\r?\n/)
  const listening = lines.find((l) => l.includes('Server listening') && l.includes(url))
  t.match(listening, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*: Server listening at http:\/\/127\.0\.0\.1:\d+/, `a pretty line: ${listening}`)
  t.notOk(lines.some((l) => l.startsWith('{"level"')), 'no JSON line on the terminal')

  child.stdin?.write('\u0003')
  await exitOf(child)
  await waitFor(async () => !(await answers(`${url}/healthz`)), 'the gateway stopped by Ctrl-C')
  t.pass('Ctrl-C stopped the gateway')
})

t.test('not a terminal: JSON lines', async (t) => {
  ensureBuilt()
  const { env, url } = await stackEnv(t)
  const child = spawnTracked('bash', ['scripts/dev-stack.sh'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }, false)
  t.teardown(() => killGroup(child))
  const output = collect(child)
  await waitFor(() => answers(`${url}/healthz`), 'the gateway of the stack', 60_000)
  await waitFor(() => output().includes('Server listening'), 'the gateway\'s listening line')
  const line = output().split('\n').find((l) => l.includes('Server listening') && l.includes(url)) ?? ''
  let parsed: { level?: number, msg?: string } = {}
  try { parsed = JSON.parse(line) as typeof parsed } catch { /* asserted below */ }
  t.equal(parsed.level, 30, `a JSON line with pino's numeric level: ${line}`)
  t.match(parsed.msg, /^Server listening at http:\/\/127\.0\.0\.1:\d+$/)

  child.kill('SIGINT')
  await exitOf(child)
  await waitFor(async () => !(await answers(`${url}/healthz`)), 'the gateway stopped by SIGINT')
  t.pass('SIGINT stopped the gateway')
})
