/**
 * Cheap argon2id hashes of the demo passwords for the in-process users stub (see
 * `UsersServiceOptions.seedHashes`): the same algorithm and code path with 64 KiB and one pass
 * instead of 19 MiB and two, so that the suites that log in hundreds of times do not spend their
 * time in argon2 on a loaded machine. The e2e, image and compose tests run the stub with its real
 * seeded hashes.
 */
import { randomBytes } from 'node:crypto'
import { argon2id } from 'hash-wasm'
import type { SeedHashes } from '../../services/users/app.js'

const cheap = (password: string): Promise<string> =>
  argon2id({ password, salt: randomBytes(16), parallelism: 1, iterations: 1, memorySize: 64, hashLength: 32, outputType: 'encoded' })

let memo: Promise<SeedHashes> | undefined

/** Computed once per test process. */
export function testSeedHashes (passwords: Readonly<Record<string, string>>): Promise<SeedHashes> {
  memo ??= (async () => {
    const byUsername: Record<string, string> = {}
    for (const [username, password] of Object.entries(passwords)) byUsername[username] = await cheap(password)
    return { byUsername, dummy: await cheap(randomBytes(16).toString('hex')) }
  })()
  return memo
}
