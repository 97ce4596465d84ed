/**
 * The shipped edge configurations run for real (deploy/edge/): nginx and Caddy (Debian packages,
 * scripts/test-packages.txt) in front of the gateway and the stub services. The test writes only
 * what a deployment writes: nginx's main file (addresses, port, temp paths) that includes the
 * shipped deploy/edge/nginx/auth-gateway.conf, and Caddy's environment for the shipped Caddyfile.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { killAndWait, spawnTracked } from '../../dev-tools/child-processes.js'
import { freePort, waitFor } from './redis-server.js'
import { ROOT } from './processes.js'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface Backends {
  /** http://host:port of each. */
  gateway: string
  users: string
  orders: string
}

export interface EdgeProxy {
  url: string
  child: ChildProcess
  output: () => string
}

const hostPort = (url: string): string => new URL(url).host

function track (child: ChildProcess): () => string {
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-8_000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return () => output
}

async function answering (url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) })
    return true
  } catch {
    return false
  }
}

/** nginx with deploy/edge/nginx/auth-gateway.conf, as deploy/edge/nginx/nginx.conf.example shows. */
export async function startNginx (t: Teardown, backends: Backends): Promise<EdgeProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-nginx-'))
  const port = await freePort()
  writeFileSync(join(dir, 'nginx.conf'), `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {}
http {
    access_log off;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    upstream auth_gateway { server ${hostPort(backends.gateway)}; keepalive 32; }
    upstream users { server ${hostPort(backends.users)}; keepalive 32; }
    upstream orders { server ${hostPort(backends.orders)}; keepalive 32; }
    server {
        listen 127.0.0.1:${port};
        include ${join(ROOT, 'deploy/edge/nginx/auth-gateway.conf')};
    }
}
`)
  const child = spawnTracked('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')],
    { stdio: ['ignore', 'pipe', 'pipe'] }, false)
  const output = track(child)
  const url = `http://127.0.0.1:${port}`
  t.teardown(async () => {
    await killAndWait(child)
    rmSync(dir, { recursive: true, force: true })
  })
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${output()}`)
    return await answering(url + '/healthz')
  }, 'nginx answering')
  return { url, child, output }
}

/** Caddy with the shipped deploy/edge/caddy/Caddyfile; its addresses come from the environment. */
export async function startCaddy (t: Teardown, backends: Backends): Promise<EdgeProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-caddy-'))
  const port = await freePort()
  const child = spawnTracked('caddy', ['run', '--config', join(ROOT, 'deploy/edge/caddy/Caddyfile'), '--adapter', 'caddyfile'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      XDG_DATA_HOME: dir,
      XDG_CONFIG_HOME: dir,
      EDGE_LISTEN: `127.0.0.1:${port}`,
      AUTH_GATEWAY: hostPort(backends.gateway),
      USERS_UPSTREAM: hostPort(backends.users),
      ORDERS_UPSTREAM: hostPort(backends.orders),
      CADDY_ADMIN: 'off'
    }
  }, false)
  const output = track(child)
  const url = `http://127.0.0.1:${port}`
  t.teardown(async () => {
    await killAndWait(child)
    rmSync(dir, { recursive: true, force: true })
  })
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`caddy exited: ${output()}`)
    return await answering(url + '/healthz')
  }, 'caddy answering')
  return { url, child, output }
}
