/**
 * `npm run keys:generate -- [file]` (default keys/jwks.json): writes a new private JWKS file with
 * one ES256 key, or prepends a new key to an existing file so that it signs from the next roll-out
 * while the older keys keep verifying. See the README's key rotation procedure.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generatePrivateJwk, KeyRing, parsePrivateJwks, type PrivateJwk } from '../tokens/key-ring.js'

const file = process.argv[2] ?? 'keys/jwks.json'

let existing: PrivateJwk[] = []
try {
  existing = parsePrivateJwks(await readFile(file, 'utf8'))
  await KeyRing.fromJwks(existing) // every key must import, or the rotated file would not load
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
    process.stderr.write(`${file}: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

const key = await generatePrivateJwk()
await mkdir(dirname(file), { recursive: true })
const tmp = `${file}.tmp`
await writeFile(tmp, JSON.stringify({ keys: [key, ...existing] }, null, 2) + '\n', { mode: 0o600 })
await chmod(tmp, 0o600) // `mode` applies only when writeFile creates the file (a stale .tmp keeps its own)
await rename(tmp, file)
process.stdout.write(`${file}: new signing key ${key.kid}${existing.length > 0 ? `, ${existing.length} older key(s) kept for verification` : ''}\n`)
