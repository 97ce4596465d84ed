/**
 * Key rotation (JWT_KEYS_FILE; docs/operations.md, docs/tokens-and-sessions.md): a new key signs
 * while older keys keep verifying, replicas share one Redis, and a key that left the ring stops
 * verifying. Also the `keys:generate` CLI that writes and rotates the private JWKS file.
 */
import t from 'tap'
import { ensureBuilt, runToExit, type RunResult } from '../helpers/processes.js'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from '../helper.js'
import { decodePart } from '../helpers/jwt-craft.js'
import { startRedis } from '../helpers/redis-server.js'
import { generatePrivateJwk, KeyRing, type PrivateJwk } from '../../src/tokens/key-ring.js'


const kidOf = (token: string): string => decodePart(token.split('.')[0]!).kid

t.test('rotation across replicas sharing one Redis', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const k1 = await generatePrivateJwk()
  const k2 = await generatePrivateJwk()
  t.not(k1.kid, k2.kid)

  // Subtests own the gateways, so they close before Redis stops.
  t.test('old key verifies, new key signs, removed key refuses', async (t) => {
    const a = await build(t, { redis, keyRing: await KeyRing.fromJwks([k1]) })
    const b = await build(t, { redis, keyRing: await KeyRing.fromJwks([k2, k1]) })
    const c = await build(t, { redis, keyRing: await KeyRing.fromJwks([k2]) })

    const first = await a.login('alice')
    t.equal(kidOf(first.access), k1.kid, 'A signs with K1')
    t.equal(kidOf(first.refresh), k1.kid)

    // B accepts what A issued.
    const sessions = await b.request('GET', '/auth/sessions', { token: first.access })
    t.equal(sessions.status, 200, `B accepts K1's access token: ${sessions.text}`)
    t.equal(sessions.body.sessions.length, 1)
    const verify = await b.request('POST', '/auth/verify', { body: { token: first.refresh } })
    t.equal(verify.status, 200, 'B verifies K1\'s refresh token')

    const rotated = await b.request('POST', '/auth/refresh', { body: { refresh: first.refresh } })
    t.equal(rotated.status, 200, `B rotates K1's refresh token: ${rotated.text}`)
    t.equal(kidOf(rotated.body.access), k2.kid, 'B\'s new access token has kid K2')
    t.equal(kidOf(rotated.body.refresh), k2.kid, 'B\'s new refresh token has kid K2')
    t.equal((await b.request('GET', '/auth/sessions', { token: rotated.body.access })).status, 200)
    const fromB = await b.login('bob')
    t.equal(kidOf(fromB.access), k2.kid, 'B signs logins with K2')

    // B's JWKS lists both keys, public members only.
    const jwks = await b.request('GET', '/.well-known/jwks.json')
    t.equal(jwks.status, 200)
    t.same(jwks.body.keys.map((k: { kid: string }) => k.kid), [k2.kid, k1.kid], 'JWKS of B: K2 and K1')
    for (const k of jwks.body.keys) {
      t.notOk('d' in k, `no private member in ${k.kid}`)
      t.equal(k.alg, 'ES256')
      t.equal(k.use, 'sig')
      t.equal(k.kty, 'EC')
    }
    const jwksA = await a.request('GET', '/.well-known/jwks.json')
    t.same(jwksA.body.keys.map((k: { kid: string }) => k.kid), [k1.kid], 'JWKS of A: K1 only')

    // C no longer knows K1.
    const second = await a.login('alice')
    const refused = await c.request('GET', '/auth/sessions', { token: second.access })
    t.equal(refused.status, 401, 'C refuses K1\'s access token')
    t.equal(refused.body.code, 'token_invalid')
    t.match(refused.headers.get('www-authenticate'), /error="invalid_token"/)
    const refusedRefresh = await c.request('POST', '/auth/refresh', { body: { refresh: second.refresh } })
    t.equal(refusedRefresh.status, 401, 'C refuses K1\'s refresh token')
    t.equal(refusedRefresh.body.code, 'token_invalid')
    const refusedVerify = await c.request('POST', '/auth/verify', { body: { token: second.access } })
    t.equal(refusedVerify.status, 401)
    t.equal(refusedVerify.body.code, 'token_invalid')
    // ...but takes B's K2 tokens, and the refused refresh token was not spent.
    t.equal((await c.request('GET', '/auth/sessions', { token: rotated.body.access })).status, 200, 'C accepts K2 tokens')
    t.equal((await b.request('POST', '/auth/refresh', { body: { refresh: second.refresh } })).status, 200,
      'the K1 refresh token C refused still works at B')

    // A (only K1) cannot check K2 tokens: the new key must reach every replica's ring first.
    const old = await a.request('GET', '/auth/sessions', { token: rotated.body.access })
    t.equal(old.status, 401)
    t.equal(old.body.code, 'token_invalid')

    // Revocation is shared: logout at C kills the session everywhere.
    t.equal((await c.request('POST', '/auth/logout', { token: rotated.body.access })).status, 204)
    const afterLogout = await b.request('GET', '/auth/sessions', { token: rotated.body.access })
    t.equal(afterLogout.status, 401)
    t.equal(afterLogout.body.code, 'token_revoked')
  })
})

const readKeys = async (file: string): Promise<PrivateJwk[]> => (JSON.parse(await readFile(file, 'utf8')) as { keys: PrivateJwk[] }).keys

/** The keys CLI as built (`npm run keys:generate` runs the same file). */
function runCli (args: string[]): Promise<RunResult> {
  ensureBuilt()
  return runToExit('dist/src/cli/generate-keys.js', args, {})
}

t.test('keys:generate CLI', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'nested', 'dir', 'jwks.json')

  const firstRun = await runCli([file])
  t.equal(firstRun.code, 0, `first run succeeds: ${firstRun.stderr}`)
  const one = await readKeys(file)
  t.equal(one.length, 1, 'a new file has one key')
  const oldKid = one[0]!.kid
  t.match(firstRun.stdout, oldKid, 'the new kid is printed')
  t.equal((await stat(file)).mode & 0o777, 0o600, 'file mode 0600')

  const secondRun = await runCli([file])
  t.equal(secondRun.code, 0, `second run succeeds: ${secondRun.stderr}`)
  const two = await readKeys(file)
  t.equal(two.length, 2, 'the second run adds a key')
  t.not(two[0]!.kid, oldKid, 'the first key is the new one')
  t.equal(two[1]!.kid, oldKid, 'the old key is kept second')
  t.same(two[1], one[0], 'the old key is kept unchanged')
  t.equal((await stat(file)).mode & 0o777, 0o600, 'still 0600')
  for (const k of two) {
    t.equal(typeof k.d, 'string', `key ${k.kid} is private`)
    t.equal(k.kty, 'EC')
    t.equal(k.crv, 'P-256')
    t.equal(k.alg, 'ES256')
  }
  t.notOk(secondRun.stdout.includes(two[0]!.d), 'the private key is never printed')

  // The file is what JWT_KEYS_FILE loads: its first key signs, every key verifies.
  const ring = await KeyRing.fromFile(file)
  t.equal(ring.signing.kid, two[0]!.kid)
  t.ok(ring.publicKey(oldKid), 'the old key still verifies')
  t.same(ring.publicJwks.keys.map((k) => k.kid), [two[0]!.kid, oldKid])
  t.notOk(ring.publicJwks.keys.some((k) => 'd' in k), 'no private member in the public JWKS')

  const corrupt = join(dir, 'corrupt.json')
  await writeFile(corrupt, '{"keys": [ not json')
  const bad = await runCli([corrupt])
  t.equal(bad.code, 1, 'a corrupt file: exit 1')
  t.match(bad.stderr, corrupt, 'stderr names the file')
  t.equal(bad.stderr.trim().split('\n').length, 1, 'one line on stderr')
  t.equal(await readFile(corrupt, 'utf8'), '{"keys": [ not json', 'the corrupt file is left alone')

  const publicOnly = join(dir, 'public.json')
  const { d: _d, ...pub } = two[0]!
  await writeFile(publicOnly, JSON.stringify({ keys: [pub] }))
  const noD = await runCli([publicOnly])
  t.equal(noD.code, 1, 'a key without d: exit 1')
  t.equal((await readKeys(publicOnly)).length, 1, 'the file is left alone')

  const broken = join(dir, 'broken.json')
  await writeFile(broken, JSON.stringify({ keys: [{ ...two[0]!, x: two[1]!.x }] }))
  const brokenRun = await runCli([broken])
  t.equal(brokenRun.code, 1, 'a key that does not import: exit 1')
  t.equal((await readKeys(broken)).length, 1, 'the file is left alone')
  t.notOk(brokenRun.stderr.includes(two[0]!.d), 'the private key is not printed')

  // Zero-downtime rotation across replicas: add the next key for verification only, then promote it.
  const phased = join(dir, 'phased.json')
  t.equal((await runCli([phased])).code, 0)
  const [current] = await readKeys(phased)
  const added = await runCli([phased, '--verify-only'])
  t.equal(added.code, 0, `--verify-only succeeds: ${added.stderr}`)
  const afterAdd = await readKeys(phased)
  t.equal(afterAdd.length, 2)
  t.equal(afterAdd[0]!.kid, current!.kid, '--verify-only keeps the signing key first')
  const nextKid = afterAdd[1]!.kid
  t.match(added.stdout, `--promote ${nextKid}`, 'it says how to promote the new key')
  const promoted = await runCli([phased, '--promote', nextKid])
  t.equal(promoted.code, 0, `--promote succeeds: ${promoted.stderr}`)
  t.same((await readKeys(phased)).map((k) => k.kid), [nextKid, current!.kid], 'the promoted key signs, the old one verifies')
  t.equal((await runCli([phased, '--promote', 'no-such-kid'])).code, 1, 'promoting an unknown kid: exit 1')
  t.equal((await stat(phased)).mode & 0o777, 0o600, 'still 0600 after promotion')

  // A stale temp file with a wide mode does not widen the keys file.
  const stale = join(dir, 'stale.json')
  await writeFile(`${stale}.tmp`, 'x', { mode: 0o644 })
  t.equal((await runCli([stale])).code, 0)
  t.equal((await stat(stale)).mode & 0o777, 0o600, 'still 0600 with a stale temp file')
})

t.test('KeyRing.fromFile refuses bad files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const k = await generatePrivateJwk()
  const other = await generatePrivateJwk()
  const { d: _d, ...pub } = k
  const docs: Array<[string, string]> = [
    ['not JSON', 'nope'],
    ['no keys', '{}'],
    ['empty keys', '{"keys":[]}'],
    ['JSON null', 'null'],
    ['public key only', JSON.stringify({ keys: [pub] })],
    ['RSA key', JSON.stringify({ keys: [{ ...k, kty: 'RSA' }] })],
    ['P-384 curve', JSON.stringify({ keys: [{ ...k, crv: 'P-384' }] })],
    ['HS256 alg', JSON.stringify({ keys: [{ ...k, alg: 'HS256' }] })],
    ['no kid', JSON.stringify({ keys: [{ ...k, kid: undefined }] })],
    ['duplicate kid', JSON.stringify({ keys: [k, k] })],
    ['use enc', JSON.stringify({ keys: [{ ...k, use: 'enc' }] })],
    ['a point off the curve', JSON.stringify({ keys: [{ ...k, x: 'AAAA' }] })],
    ['d of another key', JSON.stringify({ keys: [{ ...k, d: other.d }] })],
    ['key_ops encrypt', JSON.stringify({ keys: [{ ...k, key_ops: ['encrypt'] }] })],
    ['a good key then a broken one', JSON.stringify({ keys: [k, { ...other, y: k.y }] })]
  ]
  for (const [name, text] of docs) {
    const file = join(dir, `${name.replace(/\W/g, '_')}.json`)
    await writeFile(file, text)
    await t.rejects(KeyRing.fromFile(file), { name: 'KeyFileError' }, name)
  }
  await t.rejects(KeyRing.fromFile(join(dir, 'missing.json')), { name: 'KeyFileError' }, 'missing file')
})
