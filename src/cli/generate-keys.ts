/**
 * Key file tool (the key rotation procedure: docs/operations.md):
 *   npm run keys:generate -- [file]                 new key first: it signs from the next roll-out
 *   npm run keys:generate -- [file] --verify-only   new key last: verifies only, for phase one of a
 *                                                   zero-downtime rotation across many replicas
 *   npm run keys:generate -- [file] --promote KID   moves an existing key first, so it signs
 * The file (default keys/jwks.json) is created when missing and always written with mode 0600.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generatePrivateJwk, KeyRing, parsePrivateJwks, type PrivateJwk } from '../tokens/key-ring.js'

const args = process.argv.slice(2)
const verifyOnly = args.includes('--verify-only')
const promoteAt = args.indexOf('--promote')
const promote = promoteAt === -1 ? undefined : args[promoteAt + 1]
const file = args.find((a, i) => !a.startsWith('--') && (promoteAt === -1 || i !== promoteAt + 1)) ?? 'keys/jwks.json'

function fail (message: string): never {
  process.stderr.write(`${file}: ${message}\n`)
  process.exit(1)
}

let existing: PrivateJwk[] = []
try {
  existing = parsePrivateJwks(await readFile(file, 'utf8'))
  await KeyRing.fromJwks(existing) // every key must import, or the rotated file would not load
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') fail((err as Error).message)
}

let keys: PrivateJwk[]
let said: string
if (promoteAt !== -1) {
  const chosen = existing.find((k) => k.kid === promote)
  if (chosen === undefined) fail(`no key with kid ${String(promote)}`)
  keys = [chosen, ...existing.filter((k) => k !== chosen)]
  said = `key ${chosen.kid} now signs; ${keys.length - 1} other key(s) verify`
} else {
  const key = await generatePrivateJwk()
  keys = verifyOnly && existing.length > 0 ? [...existing, key] : [key, ...existing]
  said = keys[0] === key
    ? `new signing key ${key.kid}${existing.length > 0 ? `, ${existing.length} older key(s) kept for verification` : ''}`
    : `new key ${key.kid} added for verification only; promote it with --promote ${key.kid} once every replica has it`
}

await mkdir(dirname(file), { recursive: true })
const tmp = `${file}.tmp`
await writeFile(tmp, JSON.stringify({ keys }, null, 2) + '\n', { mode: 0o600 })
await chmod(tmp, 0o600) // `mode` applies only when writeFile creates the file (a stale .tmp keeps its own)
await rename(tmp, file)
process.stdout.write(`${file}: ${said}\n`)
