/**
 * The browser client and the demo page (docs/client.md), built by `npm run build` into dist/client and
 * dist/demo (scripts/build-client.mjs):
 * - GET /client/auth-client.js: one ES module, cached for a year (`immutable`), loadable by pages
 *   of other origins too (CORS_ORIGINS); its SRI hash is /client/auth-client.js.sha384.
 * - GET /demo/ (DEMO_PAGE=true; the dev stack sets it): a page built on the client, under a CSP that
 *   allows its own scripts, styles and calls to this origin only.
 * Each directory is its own encapsulated @fastify/static (decorateReply: false), so other static
 * mounts (the admin dashboard) do not clash.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import fastifyStatic from '@fastify/static'

/** The package root (the folder with package.json), from src/ or from dist/src/ alike. */
function packageRoot (): string {
  let dir = import.meta.dirname
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('package.json not found above ' + import.meta.dirname)
    dir = parent
  }
  return dir
}

const DEMO_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

export interface ClientFilesOptions {
  /** Where the built client and demo are (default: dist/ of the package). */
  distDir?: string
}

const clientFiles: FastifyPluginAsync<ClientFilesOptions> = async (fastify, opts) => {
  const distDir = opts.distDir ?? join(packageRoot(), 'dist')
  const clientDir = join(distDir, 'client')
  if (!existsSync(join(clientDir, 'auth-client.js'))) {
    fastify.log.warn({ dir: clientDir }, 'the browser client is not built (npm run build): /client/ and /demo/ are not served')
    return
  }

  await fastify.register(async (client) => {
    // After helmet's hook (registered on the root), which sets `same-site` on every answer: pages
    // of other origins load this module.
    client.addHook('onRequest', (_request, reply, done) => {
      reply.header('cross-origin-resource-policy', 'cross-origin')
      done()
    })
    await client.register(fastifyStatic, {
      root: clientDir,
      prefix: '/client/',
      decorateReply: false,
      index: false,
      // The file changes only with a new release of the gateway; pages pin it with its integrity hash.
      maxAge: '365d',
      immutable: true
    })
  })

  if (!fastify.config.demoPage) return
  const demoDir = join(distDir, 'demo')
  // The page shows second-factor screens only for the factors this gateway has (docs/mfa.md).
  const { key, rpId } = fastify.config.mfa
  const secondFactors = key === null ? '' : rpId === null ? 'totp' : 'totp webauthn'
  const page = (await readFile(join(demoDir, 'index.html'), 'utf8'))
    .replace('<body data-second-factors="">', `<body data-second-factors="${secondFactors}">`)
  await fastify.register(async (demo) => {
    // After helmet's hook (registered on the root): the demo page runs its own script and style.
    demo.addHook('onRequest', async (_request, reply) => {
      reply.header('content-security-policy', DEMO_CSP)
      // Rebuilt with the client (the page names the client's hash): always revalidated.
      reply.header('cache-control', 'no-cache')
    })
    // The gateway routes the normalized path (no trailing slash), so /demo/ arrives here as /demo.
    demo.get('/demo', { schema: { hide: true } }, async (_request, reply) => {
      return await reply.type('text/html; charset=utf-8').send(page)
    })
    await demo.register(fastifyStatic, {
      root: demoDir,
      prefix: '/demo/',
      decorateReply: false,
      index: false,
      cacheControl: false
    })
  })
}

export default clientFiles
