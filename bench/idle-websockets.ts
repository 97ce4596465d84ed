/**
 * `make bench-websockets`: what an idle proxied WebSocket costs the gateway (docs/live-connections.md).
 * The gateway runs as its own process (bin/auth-gateway, as in production) in front of the orders
 * stub; one user opens SOCKETS (default 1000) WebSockets to /api/orders/ws and leaves them idle.
 * The figure is the gateway's RSS (VmRSS of /proc/<pid>/status) and V8 heap in use with 10 sockets
 * open and with SOCKETS open, divided by the difference; then one logout ends every socket, and the
 * time until the last one closed is reported.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import { startRedis, waitFor } from '../dev-tools/redis-server.js'
import { remoteGatewayKeys } from '../services/shared/gateway-assertion.js'
import { buildOrdersService } from '../services/orders/app.js'
import { buildUsersService } from '../services/users/app.js'

const SOCKETS = Number(process.env.SOCKETS ?? 1000)
const WARM = 10
const MB = 1024 * 1024

function rss (pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) * 1024
}

async function heapUsed (base: string): Promise<number> {
  const text = await (await fetch(base + '/metrics')).text()
  const line = text.split('\n').find((l) => l.startsWith('gateway_nodejs_heap_size_used_bytes '))
  return Number(line?.split(' ')[1] ?? 0)
}

const redis = await startRedis()
const port = 18000 + Math.floor(Math.random() * 1000)
const base = `http://127.0.0.1:${port}`
const stubOpts = { keys: remoteGatewayKeys(`${base}/.well-known/jwks.json`), issuer: 'auth-gateway' }
const users = await buildUsersService(stubOpts)
const orders = await buildOrdersService(stubOpts)
const usersUrl = await users.listen({ port: 0, host: '127.0.0.1' })
const ordersUrl = await orders.listen({ port: 0, host: '127.0.0.1' })
const gateway = spawn('sh', ['bin/auth-gateway'], {
  env: {
    PATH: process.env.PATH ?? '', ...redis.env, PORT: String(port), LOG_LEVEL: 'warn', USERS_URL: usersUrl, ORDERS_URL: ordersUrl,
    LIVE_CONNECTIONS_PER_USER: String(SOCKETS + WARM), API_USER_LIMIT: '1000000', UPSTREAM_USER_CONCURRENCY: '100000'
  },
  stdio: ['ignore', 'inherit', 'inherit']
})
const sockets: WebSocket[] = []
try {
  await waitFor(async () => (await fetch(base + '/healthz').catch(() => null))?.status === 200, 'the gateway', 90_000)
  const login = await fetch(
    base + '/auth/login',
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'alice-password' })
    }
  )
  const { access } = await login.json() as { access: string }
  const open = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, n - i) }, async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/api/orders/ws`, { headers: { authorization: `Bearer ${access}` }, perMessageDeflate: false })
        sockets.push(ws)
        await new Promise<void>((resolve, reject) => {
          ws.once('message', () => resolve())
          ws.once('error', reject)
        })
      }))
    }
  }
  const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 3000))
  const pid = gateway.pid!
  await open(WARM)
  await settle()
  const before = { rss: rss(pid), heap: await heapUsed(base) }
  const started = Date.now()
  await open(SOCKETS)
  const openedIn = Date.now() - started
  await settle()
  const after = { rss: rss(pid), heap: await heapUsed(base) }
  const per = (a: number, b: number): string => ((a - b) / SOCKETS / 1024).toFixed(1)
  console.log(`${SOCKETS} idle WebSockets opened in ${(openedIn / 1000).toFixed(1)} s`)
  console.log(`gateway RSS: ${(before.rss / MB).toFixed(1)} MB with ${WARM} open, ${(after.rss / MB).toFixed(1)} MB with ` +
    `${SOCKETS + WARM}: ${per(after.rss, before.rss)} KiB per socket`)
  console.log(`gateway V8 heap in use: ${(before.heap / MB).toFixed(1)} MB, then ${(after.heap / MB).toFixed(1)} MB: ` +
    `${per(after.heap, before.heap)} KiB per socket (not collected first: an upper bound)`)
  const closedAt = Date.now()
  await fetch(base + '/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${access}` } })
  await waitFor(() => sockets.every((ws) => ws.readyState === WebSocket.CLOSED), 'every socket closed', 30_000)
  console.log(`one logout closed all ${sockets.length} sockets within ${((Date.now() - closedAt) / 1000).toFixed(2)} s`)
} finally {
  for (const ws of sockets) ws.terminate()
  gateway.kill('SIGTERM')
  await new Promise((resolve) => gateway.once('exit', resolve))
  await users.close()
  await orders.close()
  await redis.stop()
}
