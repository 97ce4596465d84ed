// Builds the browser/Node client (client/src) into one ES module, dist/client/auth-client.js, with
// its Subresource Integrity hash (dist/client/auth-client.js.sha384), and the demo page into
// dist/demo/ (its HTML names the client's hash). Run by `npm run build`; tests call buildClient().
// Files are written next to their target and renamed over it, so a reader never sees half a file.
import { build } from 'esbuild'
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
export const CLIENT_URL = '/client/auth-client.js'

/** @param {string} path @param {Uint8Array | string} contents */
async function writeAtomic (path, contents) {
  await mkdir(dirname(path), { recursive: true })
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  await writeFile(temporary, contents)
  await rename(temporary, path)
}

/** @param {string} entry @param {string[]} external */
async function bundle (entry, external = []) {
  const result = await build({
    entryPoints: [join(root, entry)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    external,
    write: false,
    legalComments: 'none',
    logLevel: 'warning'
  })
  return result.outputFiles[0]?.contents ?? new Uint8Array()
}

/** Builds the client and the demo; returns the client's integrity value (`sha384-...`). */
export async function buildClient ({ outDir = join(root, 'dist') } = {}) {
  const client = await bundle('client/src/index.ts')
  const integrity = `sha384-${createHash('sha384').update(client).digest('base64')}`
  await writeAtomic(join(outDir, 'client', 'auth-client.js'), client)
  await writeAtomic(join(outDir, 'client', 'auth-client.js.sha384'), integrity + '\n')

  // The demo names the client by a versioned URL (the file is cached as immutable) and pins its hash.
  const versioned = `${CLIENT_URL}?v=${integrity.slice('sha384-'.length, 'sha384-'.length + 16).replace(/[+/]/g, '_')}`
  const demo = Buffer.from(await bundle('client/demo/demo.ts', [CLIENT_URL])).toString('utf8').replaceAll(`"${CLIENT_URL}"`,
    `"${versioned}"`)
  const html = (await readFile(join(root, 'client/demo/index.html'), 'utf8'))
    .replaceAll('%CLIENT_INTEGRITY%', integrity)
    .replaceAll(`"${CLIENT_URL}"`, `"${versioned}"`)
  await writeAtomic(join(outDir, 'demo', 'demo.js'), demo)
  for (const file of ['demo.css', 'favicon.svg']) await writeAtomic(join(outDir, 'demo', file),
    await readFile(join(root, 'client/demo', file)))
  await writeAtomic(join(outDir, 'demo', 'index.html'), html)
  return integrity
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const integrity = await buildClient()
  console.log(`client: dist/client/auth-client.js integrity=${integrity}`)
}
