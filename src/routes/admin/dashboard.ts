/**
 * GET /admin/: the security dashboard's static files (built by `npm run build:web` into
 * dist/web/admin), in their own encapsulated @fastify/static instance with a CSP of their own:
 * scripts, styles and API calls from the gateway's origin only, nothing inline. The files hold no
 * data: every API call they make needs an admin token.
 */
import { existsSync, readFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import fastifyStatic from '@fastify/static'
import { Type } from 'typebox'

/** dist/web/admin next to the running code, whether it runs from src/ (tests) or dist/src/. */
export function dashboardRoot (): string {
  const base = resolve(import.meta.dirname, '..', '..', '..')
  return basename(base) === 'dist' ? join(base, 'web', 'admin') : join(base, 'dist', 'web', 'admin')
}

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** What the dashboard's build writes: the page, its script, its style (and images it may use). */
const DASHBOARD_FILE = /^\/[\w.-]+\.(html|js|css|svg|png)$/

const dashboard: FastifyPluginAsync<{ root?: string }> = async (fastify, opts) => {
  const root = opts.root ?? dashboardRoot()
  if (!existsSync(join(root, 'index.html'))) {
    fastify.log.warn({ root }, 'dashboard not built (npm run build:web): /admin/ answers 404')
    return
  }
  // Paths are normalized before routing (a trailing slash goes): `/admin/` arrives as `/admin`.
  // The page links its files by absolute path, so it works under either spelling.
  // The page shows passkey buttons only when this gateway has passkeys (docs/mfa.md#passkeys).
  const passkeys = fastify.config.mfa.rpId !== null ? 'on' : ''
  const page = readFileSync(join(root, 'index.html'), 'utf8').replace('<body data-passkeys="">', `<body data-passkeys="${passkeys}">`)
  fastify.get('/admin', {
    schema: { tags: ['admin'], summary: 'The security dashboard (HTML; its API calls need role admin)',
      response: { 200: Type.String({ description: 'text/html' }) } }
  }, async (_request, reply) => {
    return reply.header('content-security-policy', DASHBOARD_CSP).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(
      page)
  })
  await fastify.register(fastifyStatic, {
    root,
    prefix: '/admin/',
    decorateReply: false,
    index: false,
    // The page is small and changes with each deployment: always revalidated.
    cacheControl: true,
    maxAge: 0,
    // Replaces the gateway-wide `default-src 'none'` for these files only.
    setHeaders: (res) => { res.setHeader('content-security-policy', DASHBOARD_CSP) },
    // The page's own files only: a source map (of a local debug build) or anything else left in
    // the folder is not served.
    allowedPath: (path) => DASHBOARD_FILE.test(path)
  })
}

export default dashboard
