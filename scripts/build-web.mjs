// Builds the browser pages served by the gateway: web/admin/*.ts bundled by esbuild (one ES
// module, no CDN), HTML and CSS copied, into dist/web/admin. Run by `npm run build:web`.
import { build } from 'esbuild'
import { copyFile, mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist', 'web', 'admin')
await mkdir(out, { recursive: true })
await build({
  entryPoints: [join(root, 'web', 'admin', 'main.ts')],
  outfile: join(out, 'admin.js'),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  // No source map in dist/: the gateway serves only the page's own files to anyone.
  sourcemap: false,
  logLevel: 'warning'
})
for (const file of ['index.html', 'admin.css']) await copyFile(join(root, 'web', 'admin', file), join(out, file))
