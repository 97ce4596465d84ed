/**
 * Chaos soak (`make chaos`, bounded by CHAOS_SECONDS, default 600; everything on 127.0.0.1):
 * Redis, the users and orders stubs and two gateway replicas under mixed load — logins, refreshes
 * from several concurrent "tabs" of one session (to both replicas), proxied GETs and POSTs,
 * logouts — while every FAULT_INTERVAL seconds (default 30) Redis or one replica is killed with
 * SIGKILL and brought back at once.
 *
 * Invariants, checked and printed at the end (exit status 1 when one fails):
 *  1. no 500 ever;
 *  2. outside the fault windows no accepted request is lost (no transport error or 5xx; every
 *     order a POST accepted (201) is found again);
 *  3. no revoked or logged-out token is ever accepted again;
 *  4. no refresh token ever has two different successors;
 *  5. every answer is a documented status with the catalogue's code;
 *  6. after each fault, service is back (both replicas ready and a login through each) within 5 s;
 *  7. WebSockets stay open through the load (SOCKET_WORKERS, default 2, each with a socket open on
 *     one replica while it logs out on the other): every socket of a logged-out session closes
 *     (1008 `session_revoked`) within 5 s, and none ever echoes after its logout.
 * A fault window runs from the kill until service is back, plus one second.
 */
import { writeFileSync, mkdtempSync, rmSync, openSync, readFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { ERROR_CATALOGUE } from '../src/errors.js'
import { generatePrivateJwk } from '../src/tokens/key-ring.js'
import { killAndWait, spawnTracked, killGroup } from './child-processes.js'
import { freePort, startRedis, waitFor } from './redis-server.js'
import WebSocket from 'ws'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const SECONDS = Number(process.env.CHAOS_SECONDS ?? 600)
const FAULT_INTERVAL_S = Number(process.env.FAULT_INTERVAL ?? 30)
const WORKERS = Number(process.env.CHAOS_WORKERS ?? 6)
const SOCKET_WORKERS = Number(process.env.SOCKET_WORKERS ?? 2)
/** How long a logged-out session's socket may stay open (docs/live-connections.md). */
const SOCKET_END_GOAL_MS = 5_000
// The goal of the issue; the short run inside `make test` relaxes it (no timing assertions in tests).
const RECOVERY_GOAL_MS = Number(process.env.CHAOS_RECOVERY_GOAL_MS ?? 5_000)
// The active demo users (carol is inactive).
const PASSWORDS: Record<string, string> = { alice: 'alice-password', bob: 'bob-password', admin: 'admin-password' }
const CATALOGUE = ERROR_CATALOGUE as Record<string, { status: number }>

interface Answer { status: number, code?: string, body: any, error?: string, started: number, ended: number, replica: number }

// ---- the stack --------------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'gw-chaos-'))
const keysFile = join(dir, 'jwks.json')
const redis = await startRedis()
const [usersPort, ordersPort, portA, portB] = [await freePort(), await freePort(), await freePort(), await freePort()]
const replicaPorts = [portA!, portB!]
const replicaUrls = replicaPorts.map((p) => `http://127.0.0.1:${p}`)
writeFileSync(keysFile, JSON.stringify({ keys: [await generatePrivateJwk()] }), { mode: 0o600 })

/** Each program's output goes to a log file of the run (printed when the stack does not come up). */
const logOf = (script: string, port: number): string => join(dir, `${script.replace(/\W+/g, '-')}-${port}.log`)
function node (script: string, env: Record<string, string>, port: number): ChildProcess {
  const out = openSync(logOf(script, port), 'a')
  return spawnTracked(process.execPath, [join(ROOT, script)],
    { cwd: ROOT, stdio: ['ignore', out, out], env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', LOG_LEVEL: 'warn', ...env } })
}
function printLogs (): void {
  for (const [script, port] of [['dist/services/users/server.js', usersPort], ['dist/services/orders/server.js', ordersPort],
    ['dist/src/server.js', portA], ['dist/src/server.js', portB]] as const) {
    try { console.error(`--- ${script} :${port}\n${readFileSync(logOf(script, port!), 'utf8').slice(-3_000)}`) } catch { /* none */ }
  }
}
const stubEnv = { HOST: '127.0.0.1', GATEWAY_JWKS_URL: `${replicaUrls[0]}/.well-known/jwks.json` }
const stubs = [
  node('dist/services/users/server.js', { ...stubEnv, USERS_PORT: String(usersPort) }, usersPort!),
  node('dist/services/orders/server.js', { ...stubEnv, ORDERS_PORT: String(ordersPort) }, ordersPort!)
]
const replicaEnv = (port: number): Record<string, string> => ({
  HOST: '127.0.0.1', PORT: String(port), REDIS_URL: redis.url, JWT_KEYS_FILE: keysFile,
  USERS_URL: `http://127.0.0.1:${usersPort}`, ORDERS_URL: `http://127.0.0.1:${ordersPort}`,
  LOGIN_IP_LIMIT: '1000000', REFRESH_SESSION_LIMIT: '1000000', VERIFY_IP_LIMIT: '1000000', API_USER_LIMIT: '1000000',
  PUBLIC_IP_LIMIT: '1000000', LOCKOUT_THRESHOLD: '1000000', SHUTDOWN_GRACE_MS: '2000',
  // The product default unless the caller sets it (the short run inside `make test` does).
  ...(process.env.REDIS_COMMAND_TIMEOUT_MS !== undefined ? { REDIS_COMMAND_TIMEOUT_MS: process.env.REDIS_COMMAND_TIMEOUT_MS } : {})
})
const replicas: ChildProcess[] = replicaPorts.map((p) => node('dist/src/server.js', replicaEnv(p), p))

async function ready (url: string): Promise<boolean> {
  try { return (await fetch(url, { signal: AbortSignal.timeout(1_000) })).status === 200 } catch { return false }
}
async function loginWorks (replica: number): Promise<boolean> {
  const res = await call(replica, 'POST', '/auth/login', { body: { username: 'admin', password: PASSWORDS.admin }, probe: true })
  return res.status === 200
}
/** Service is back: both replicas ready (serving; readiness leaves Redis out) and a login goes through (Redis reachable). */
let probeReplica = 0
const serviceBack = async (): Promise<boolean> =>
  (await Promise.all(replicaUrls.map((u) => ready(`${u}/readyz`)))).every(Boolean) && await loginWorks(probeReplica++ % 2)

try {
  await waitFor(() => ready(`http://127.0.0.1:${usersPort}/healthz`), 'users stub', 60_000)
  await waitFor(() => ready(`http://127.0.0.1:${ordersPort}/healthz`), 'orders stub', 60_000)
  await waitFor(serviceBack, 'both replicas ready and a login through each', 60_000)
} catch (err) {
  printLogs()
  for (const c of [...replicas, ...stubs]) killGroup(c)
  await redis.stop()
  rmSync(dir, { recursive: true, force: true })
  throw err
}

// ---- bookkeeping ------------------------------------------------------------------------------
const counts = new Map<string, number>()
const violations: string[] = []
const violate = (what: string): void => { if (violations.length < 50) violations.push(what); else violations.length = 50 }
const windows: Array<{ from: number, to: number }> = []
let openWindowFrom: number | undefined
let redisGeneration = 0
const inWindow = (a: Answer): boolean => openWindowFrom !== undefined && a.ended >= openWindowFrom ||
  windows.some((w) => a.ended >= w.from && a.started <= w.to)
const successors = new Map<string, string>()
const revokedAccess: string[] = []
const revokedRefresh: string[] = []
let accepted = 0
let lostOutside = 0
let failedInside = 0
const ordersToFind: Array<{ username: string, id: string, replica: number }> = []

async function call (replica: number, method: string, path: string,
  opts: { body?: unknown, token?: string, probe?: boolean } = {}): Promise<Answer> {
  const started = Date.now()
  const headers: Record<string, string> = {}
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  let answer: Answer
  try {
    const res = await fetch(replicaUrls[replica] + path,
      { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: AbortSignal.timeout(15_000) })
    const text = await res.text()
    let body: any = null
    try { body = text.length > 0 ? JSON.parse(text) : null } catch { body = text }
    answer = { status: res.status, code: typeof body?.code === 'string' ? body.code : undefined, body, started, ended: Date.now(), replica }
  } catch (err) {
    answer = { status: 0, error: (err as { cause?: { code?: string } }).cause?.code ?? String(err), body: null, started, ended: Date.now(),
      replica }
  }
  if (opts.probe === true) return answer
  const key = answer.status === 0 ? `transport ${answer.error}` : `${answer.status}${answer.code !== undefined ? ' ' + answer.code : ''}`
  counts.set(key, (counts.get(key) ?? 0) + 1)
  if (answer.status === 500) violate(`500 on ${method} ${path}: ${JSON.stringify(answer.body).slice(0, 200)}`)
  if (answer.status >= 400) {
    const entry = answer.code === undefined ? undefined : CATALOGUE[answer.code]
    if (entry === undefined || entry.status !== answer.status) violate(
      `undocumented answer ${answer.status} ${String(answer.code)} on ${method} ${path}`)
  }
  const failed = answer.status === 0 || answer.status >= 500
  if (failed) {
    if (inWindow(answer)) failedInside++
    else { lostOutside++; violate(`lost outside a fault window: ${method} ${path} -> ${key}`) }
  } else {
    accepted++
  }
  return answer
}

// ---- load -------------------------------------------------------------------------------------
const deadline = Date.now() + SECONDS * 1000
const pick = (): number => Math.floor(Math.random() * 2)
const users = Object.keys(PASSWORDS)

async function worker (n: number): Promise<void> {
  const username = users[n % users.length]!
  while (Date.now() < deadline) {
    const generation = redisGeneration
    const login = await call(pick(), 'POST', '/auth/login', { body: { username, password: PASSWORDS[username] } })
    if (login.status !== 200) { await new Promise((r) => setTimeout(r, 200)); continue }
    let access = login.body.access as string
    let refresh = login.body.refresh as string
    for (let i = 0; i < 12 && Date.now() < deadline; i++) {
      const op = Math.random()
      if (op < 0.35) {
        const res = await call(pick(), 'GET', '/api/orders', { token: access })
        if (res.status === 401 && generation === redisGeneration && !inWindow(res)) violate(`a live session refused: ${res.code}`)
        if (res.status === 401) break
      } else if (op < 0.6) {
        const res = await call(pick(), 'POST', '/api/orders', { token: access, body: { item: `chaos-${n}-${i}`, quantity: 1 } })
        if (res.status === 201) ordersToFind.push({ username, id: res.body.id, replica: pick() })
        if (res.status === 401) break
      } else {
        // Several tabs refresh the same token at once, on both replicas: one successor only.
        const tabs = 2 + Math.floor(Math.random() * 3)
        const answers = await Promise.all(Array.from({ length: tabs }, (_, tab) =>
          call(tab % 2, 'POST', '/auth/refresh', { body: { refresh } })))
        const next = new Set<string>()
        for (const a of answers) if (a.status === 200) next.add(a.body.refresh as string)
        for (const s of next) {
          const known = successors.get(refresh)
          if (known !== undefined && known !== s) violate('a refresh token with two different successors')
          successors.set(refresh, s)
        }
        if (next.size > 1) violate(`${next.size} different successors from ${tabs} concurrent tabs`)
        const ok = answers.find((a) => a.status === 200)
        if (ok === undefined) break
        access = ok.body.access as string
        refresh = ok.body.refresh as string
      }
    }
    const out = await call(pick(), 'POST', '/auth/logout', { token: access })
    if (out.status === 204) { revokedAccess.push(access); revokedRefresh.push(refresh) }
  }
}

/** One WebSocket per session: open on one replica, echoing, while the session logs out on the other. */
const sockets = { opened: 0, endedByLogout: 0, cutByFaults: 0 }
async function socketWorker (n: number): Promise<void> {
  const username = users[n % users.length]!
  while (Date.now() < deadline) {
    const generation = redisGeneration
    const login = await call(pick(), 'POST', '/auth/login', { body: { username, password: PASSWORDS[username] } })
    if (login.status !== 200) { await new Promise((r) => setTimeout(r, 200)); continue }
    const access = login.body.access as string
    const on = pick()
    const ws = new WebSocket(replicaUrls[on]!.replace('http', 'ws') + '/api/orders/ws', { headers: { authorization: `Bearer ${access}` } })
    let closed: { code: number, reason: string, at: number } | null = null
    let echoesAfterLogout = 0
    let loggedOut = false
    const started = Date.now()
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true))
      ws.once('unexpected-response', (req) => { req.destroy(); resolve(false) })
      ws.once('error', () => resolve(false))
    })
    ws.on('error', () => { /* its close follows */ })
    ws.on('close', (code, reason) => { closed ??= { code, reason: reason.toString(), at: Date.now() } })
    ws.on('message', (data) => { if (loggedOut && data.toString().startsWith('echo')) echoesAfterLogout++ })
    if (!opened) { ws.terminate(); await new Promise((r) => setTimeout(r, 200)); continue }
    sockets.opened++
    for (let i = 0; i < 5 && Date.now() < deadline && closed === null; i++) {
      ws.send(`echo ${i}`)
      await new Promise((r) => setTimeout(r, 300))
    }
    const out = await call(1 - on, 'POST', '/auth/logout', { token: access })
    if (out.status !== 204) { ws.terminate(); continue }
    loggedOut = true
    const outAt = Date.now()
    ws.send('echo after logout')
    while (closed === null && Date.now() - outAt < SOCKET_END_GOAL_MS + 2_000) await new Promise((r) => setTimeout(r, 50))
    const window = { started, ended: Date.now(), status: 0, body: null, replica: on }
    const c = closed as { code: number, reason: string, at: number } | null
    if (c !== null && c.code === 1008 && c.reason === 'session_revoked' && c.at - outAt <= SOCKET_END_GOAL_MS) sockets.endedByLogout++
    else if (inWindow(window) || generation !== redisGeneration) sockets.cutByFaults++
    else violate(`a logged-out session's socket ${c === null ? 'stayed open' : `closed ${c.code} ${c.reason} after ${c.at - outAt} ms`}`)
    if (echoesAfterLogout > 0 && !(c !== null && c.at - outAt <= SOCKET_END_GOAL_MS)) violate('a socket echoed after its session\'s logout')
    ws.terminate()
  }
}

/** Logged-out tokens, tried again and again on both replicas: never accepted. */
async function revocationProbe (): Promise<void> {
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500))
    const a = revokedAccess[Math.floor(Math.random() * revokedAccess.length)]
    const r = revokedRefresh[Math.floor(Math.random() * revokedRefresh.length)]
    if (a !== undefined) {
      const res = await call(pick(), 'GET', '/api/orders', { token: a })
      if (res.status === 200) violate('a logged-out access token was accepted again')
    }
    if (r !== undefined) {
      const res = await call(pick(), 'POST', '/auth/refresh', { body: { refresh: r } })
      if (res.status === 200) violate('a logged-out refresh token was accepted again')
    }
  }
}

// ---- faults -----------------------------------------------------------------------------------
const recoveries: Array<{ what: string, ms: number, readyMs: number }> = []
async function faults (): Promise<void> {
  let k = 0
  while (Date.now() + FAULT_INTERVAL_S * 1000 < deadline) {
    await new Promise((r) => setTimeout(r, FAULT_INTERVAL_S * 1000))
    const what = ['redis', 'replica 0', 'replica 1'][k++ % 3]!
    const from = Date.now()
    openWindowFrom = from
    if (what === 'redis') {
      await redis.kill()
      redisGeneration++
      await redis.restart()
    } else {
      const i = what === 'replica 0' ? 0 : 1
      await killAndWait(replicas[i]!)
      replicas[i] = node('dist/src/server.js', replicaEnv(replicaPorts[i]!), replicaPorts[i]!)
    }
    let readyMs = -1
    try {
      await waitFor(async () => (await Promise.all(replicaUrls.map((u) => ready(`${u}/readyz`)))).every(Boolean), 'both replicas ready',
        60_000)
      readyMs = Date.now() - from
      await waitFor(serviceBack, `service back after killing ${what}`, 60_000)
    } catch { /* counted below as a slow recovery */ }
    const ms = Date.now() - from
    recoveries.push({ what, ms, readyMs })
    windows.push({ from, to: Date.now() + 1_000 })
    openWindowFrom = undefined
    console.log(`fault ${recoveries.length}: kill -9 ${what}; service back in ${ms} ms (both replicas ready after ${readyMs} ms)`)
  }
}

console.log(
  `chaos soak: ${SECONDS} s, ${WORKERS} workers, a fault every ${FAULT_INTERVAL_S} s; replicas ${replicaUrls.join(' ')}, ` +
    `Redis ${redis.url}`)
const started = Date.now()
await Promise.all([
  ...Array.from({ length: WORKERS }, (_, n) => worker(n)),
  ...Array.from({ length: SOCKET_WORKERS }, (_, n) => socketWorker(n)),
  revocationProbe(),
  faults()
])

// Every accepted order is there (orders live in the orders stub, which is never killed): checked
// with a fresh login of its owner, as the token that created it may have been logged out since.
let ordersFound = 0
const owners = new Map<string, string>()
for (const o of ordersToFind) {
  let token = owners.get(o.username)
  if (token === undefined) {
    const login = await call(0, 'POST', '/auth/login', { body: { username: o.username, password: PASSWORDS[o.username] } })
    if (login.status !== 200) { violate(`login of ${o.username} after the soak: ${login.status}`); continue }
    token = login.body.access as string
    owners.set(o.username, token)
  }
  const res = await call(o.replica, 'GET', `/api/orders/${o.id}`, { token })
  if (res.status === 200) ordersFound++
  else violate(`accepted order ${o.id} not found: ${res.status}`)
}

const slow = recoveries.filter((r) => r.ms > RECOVERY_GOAL_MS)
for (const r of slow) violate(`service back after ${r.ms} ms (goal ${RECOVERY_GOAL_MS} ms) after killing ${r.what}`)
const total = [...counts.values()].reduce((a, b) => a + b, 0)
const summary = {
  loadAverageAtEnd: loadavg().map((l) => l.toFixed(1)).join(' '),
  cores: availableParallelism(),
  seconds: Math.round((Date.now() - started) / 1000),
  workers: WORKERS,
  requests: total,
  accepted,
  failedInsideFaultWindows: failedInside,
  lostOutsideFaultWindows: lostOutside,
  faults: recoveries.length,
  recoveryMs: { max: Math.max(0, ...recoveries.map((r) => r.ms)), each: recoveries.map((r) => `${r.what}: ${r.ms} (ready ${r.readyMs})`) },
  refreshChains: successors.size,
  logoutsProbed: revokedAccess.length,
  ordersAccepted: ordersToFind.length,
  ordersFound,
  sockets,
  answers: Object.fromEntries([...counts].sort((a, b) => b[1] - a[1])),
  violations
}
console.log(JSON.stringify(summary, null, 2))
const check = (ok: boolean, what: string): void => console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
check(!violations.some((v) => v.startsWith('500')), 'no 500 ever')
check(lostOutside === 0 && !violations.some((v) => v.startsWith('accepted order') || v.startsWith('a live session')),
  'outside the fault windows no accepted request is lost')
check(!violations.some((v) => v.includes('accepted again')), 'no revoked or logged-out token is ever accepted again')
check(!violations.some((v) => v.includes('successor')), 'no refresh token ever has two different successors')
check(!violations.some((v) => v.startsWith('undocumented')), 'every answer is a documented status and code')
check(slow.length === 0, `after each fault, service is back within ${RECOVERY_GOAL_MS / 1000} s`)
check(
  !violations.some((v) => v.includes('socket')),
  `every logged-out session's WebSocket closed within ${SOCKET_END_GOAL_MS / 1000} s (outside fault windows), none echoed after`
)
if (process.env.CHAOS_REPORT !== undefined) writeFileSync(process.env.CHAOS_REPORT, JSON.stringify(summary, null, 2))

for (const c of [...replicas, ...stubs]) killGroup(c)
await redis.stop()
rmSync(dir, { recursive: true, force: true })
process.exit(violations.length === 0 ? 0 : 1)
