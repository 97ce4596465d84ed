/**
 * nginx with the shipped deploy/edge/nginx/auth-gateway.conf for `make bench`: the main file holds
 * only the addresses (the gateway that nginx asks, the upstreams) and nginx's temp paths.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { killAndWait, spawnTracked } from '../dev-tools/child-processes.js'
import { freePort, waitFor } from '../dev-tools/redis-server.js'

/** The repository root, from dist/bench/ or bench/. */
const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url))

export interface BenchNginx { url: string, child: ChildProcess, stop: () => Promise<void> }

export async function startBenchNginx (gatewayUrl: string, upstreamUrl: string): Promise<BenchNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'))
  const port = await freePort()
  const host = (url: string): string => new URL(url).host
  writeFileSync(join(dir, 'nginx.conf'), `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    # the bench's connections stay open for the whole run (nginx closes one after 1,000 requests by default)
    keepalive_requests 100000000;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    upstream auth_gateway { server ${host(gatewayUrl)}; keepalive 64; }
    upstream users { server ${host(upstreamUrl)}; keepalive 64; }
    upstream orders { server ${host(upstreamUrl)}; keepalive 64; }
    server {
        listen 127.0.0.1:${port};
        include ${join(ROOT, 'deploy/edge/nginx/auth-gateway.conf')};
    }
}
`)
  const child = spawnTracked('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' }, false)
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error('nginx exited (is the Debian package nginx installed?)')
    try { await fetch(url + '/healthz'); return true } catch { return false }
  }, 'nginx answering')
  return { url, child, stop: async () => { await killAndWait(child); rmSync(dir, { recursive: true, force: true }) } }
}
