/**
 * `make bench-upload`: the gateway's memory during one large upload (issue 22). The gateway runs as
 * its own process (bin/auth-gateway, as in production) with a routes file whose upload route allows
 * UPLOAD_MB (default 100) MB; a sink upstream counts the bytes it receives. The figure is the
 * gateway's peak RSS (VmHWM of /proc/<pid>/status) before and after the upload: a proxy that held
 * the body whole would grow by about its size.
 */
import { spawn } from 'node:child_process'
import { createServer, request } from 'node:http'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRedis, waitFor } from '../dev-tools/redis-server.js'

const MB = 1024 * 1024
const size = Number(process.env.UPLOAD_MB ?? 100) * MB

function status (pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(field + ':'))
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) * 1024
}

const redis = await startRedis()
let received = 0
const sink = createServer((req, res) => {
  req.on('data', (chunk: Buffer) => { received += chunk.length })
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received })))
})
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
const sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}`

const dir = mkdtempSync(join(tmpdir(), 'gw-upload-bench-'))
const routes = join(dir, 'routes.yaml')
writeFileSync(routes, [
  'upstreams:',
  '  users: { url: "${USERS_URL}" }',
  '  sink: { url: "${SINK_URL}", timeout_ms: 60000 }',
  'routes:',
  `  - { path: /upload, exact: true, upstream: sink, public: true, methods: [POST], body_limit: ${size} }`,
  ''
].join('\n'), { mode: 0o644 })
const port = 18000 + Math.floor(Math.random() * 1000)
// bin/auth-gateway: the gateway as it runs in production (its V8 memory settings; node stays the pid).
const gateway = spawn('sh', ['bin/auth-gateway'], {
  env: { PATH: process.env.PATH ?? '', ...redis.env, PORT: String(port), LOG_LEVEL: 'warn', ROUTES_FILE: routes, SINK_URL: sinkUrl,
    USERS_URL: 'http://127.0.0.1:1' },
  stdio: ['ignore', 'inherit', 'inherit']
})
const base = `http://127.0.0.1:${port}`
try {
  await waitFor(async () => (await fetch(base + '/healthz').catch(() => null))?.status === 200, 'the gateway', 90_000)
  const pid = gateway.pid!
  const before = { hwm: status(pid, 'VmHWM'), rss: status(pid, 'VmRSS') }
  const started = Date.now()
  const answer = await new Promise<number>((resolve, reject) => {
    const req = request(base + '/upload', { method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    const chunk = Buffer.alloc(64 * 1024, 0x61)
    let sent = 0
    const write = (): void => {
      while (sent < size) {
        const n = Math.min(chunk.length, size - sent)
        sent += n
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { req.once('drain', write); return }
      }
      req.end()
    }
    write()
  })
  const after = { hwm: status(pid, 'VmHWM'), rss: status(pid, 'VmRSS') }
  const mb = (n: number): string => (n / MB).toFixed(1)
  console.log(
    `upload of ${mb(size)} MB through the gateway: status ${answer}, ${mb(received)} MB received by the ` +
      `upstream, ${((Date.now() - started) / 1000).toFixed(1)} s`)
  console.log(
    `gateway RSS before: ${mb(before.rss)} MB (peak ${mb(before.hwm)} MB); after: ${mb(after.rss)} MB; peak during the ` +
      `upload: ${mb(after.hwm)} MB (+${mb(after.hwm - before.hwm)} MB)`)
  if (answer !== 200 || received !== size) process.exitCode = 1
} finally {
  gateway.kill('SIGTERM')
  await new Promise((resolve) => gateway.once('exit', resolve))
  sink.close()
  await redis.stop()
  rmSync(dir, { recursive: true, force: true })
}
