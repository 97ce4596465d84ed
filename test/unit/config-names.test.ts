/**
 * One list of configuration names (issue 8, "configuration names drift"): the gateway's config
 * schema (GATEWAY_ENV_NAMES) and the stubs' (STUB_ENV_NAMES) are what the variables table of
 * docs/configuration.md lists, exactly, and what deploy/validate-manifests.mjs accepts (it imports them from the
 * build output: `make test` builds first).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { GATEWAY_ENV_NAMES } from '../../src/config.js'
import { loadStubEnv, STUB_ENV_NAMES, StubConfigError } from '../../services/shared/stub-config.js'

const root = resolve(import.meta.dirname, '../..')

function documentedConfigurationNames (): Set<string> {
  const page = readFileSync(join(root, 'docs/configuration.md'), 'utf8')
  const start = page.indexOf('\n## Variables\n')
  if (start < 0) throw new Error('docs/configuration.md has no "## Variables" section')
  const next = page.indexOf('\n## ', start + 1)
  const names = new Set<string>()
  for (const line of page.slice(start, next < 0 ? undefined : next).split('\n')) {
    if (!line.startsWith('| `')) continue
    const firstCell = line.split('|')[1] ?? ''
    for (const m of firstCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(m[1]!)
  }
  return names
}

t.test('docs/configuration.md lists exactly the variables the programs read', async (t) => {
  const documented = documentedConfigurationNames()
  const read = new Set([...GATEWAY_ENV_NAMES, ...STUB_ENV_NAMES])
  t.ok(read.has('TOKEN_CACHE_SIZE') && read.has('UPSTREAM_USER_CONCURRENCY') && read.has('JWT_ISSUER'))
  t.same([...read].filter((n) => !documented.has(n)).sort(), [], 'every variable read is documented')
  t.same([...documented].filter((n) => !read.has(n)).sort(), [], 'every documented variable is read')
})

t.test('the stubs validate their environment from their schema', async (t) => {
  t.same(loadStubEnv({ USERS_PORT: '4001', JWT_ISSUER: 'corp-gateway', UNRELATED: 'x' }), {
    USERS_PORT: 4001, JWT_ISSUER: 'corp-gateway', HOST: '127.0.0.1', GATEWAY_JWKS_URL: 'http://127.0.0.1:8080/.well-known/jwks.json', LOG_LEVEL: 'info'
  }, 'the variables given, the defaults of the schema, nothing else')
  t.throws(() => loadStubEnv({ ORDERS_PORT: '70000' }), StubConfigError)
  t.throws(() => loadStubEnv({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/)
  t.throws(() => loadStubEnv({ GATEWAY_JWKS_URL: 'ftp://x' }), /GATEWAY_JWKS_URL/)
})

function validate (dir: string, ...args: string[]): { status: number | null, out: string } {
  const r = spawnSync(process.execPath, [join(root, 'deploy/validate-manifests.mjs'), '--root', dir, '--no-build', ...args],
    { encoding: 'utf8' })
  return { status: r.status, out: r.stdout + r.stderr }
}

t.test('the deploy validator uses the same names', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-names-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(root, 'deploy'), join(dir, 'deploy'), { recursive: true })
  cpSync(join(root, 'docker-compose.yml'), join(dir, 'docker-compose.yml'))
  const gatewayMap = join(dir, 'deploy/base/gateway-configmap.yaml')
  const stubsMap = join(dir, 'deploy/base/stubs-configmap.yaml')
  t.match(readFileSync(gatewayMap, 'utf8'), /TOKEN_CACHE_SIZE/)
  t.match(readFileSync(stubsMap, 'utf8'), /JWT_ISSUER/)
  t.match(readFileSync(join(dir, 'docker-compose.yml'), 'utf8').split('\n  orders:')[0], /users:[\s\S]*JWT_ISSUER/,
    'compose passes JWT_ISSUER to the stubs')

  const clean = validate(dir)
  t.equal(clean.status, 0, clean.status === 0 ? 'TOKEN_CACHE_SIZE for the gateway and JWT_ISSUER for the stubs are accepted' : clean.out)

  writeFileSync(gatewayMap, readFileSync(gatewayMap, 'utf8').replace('  LOG_LEVEL: info\n', '  LOG_LEVEL: info\n  TOKEN_CACHE: "5"\n'))
  writeFileSync(stubsMap, readFileSync(stubsMap, 'utf8') + '  USERS_URL: http://users:3001\n')
  const drifted = validate(dir)
  t.equal(drifted.status, 1, 'an unknown name fails')
  t.match(drifted.out, /"TOKEN_CACHE" is not a gateway environment variable/)
  t.match(drifted.out, /"USERS_URL" is not a stub service environment variable/)
  t.equal(validate(dir, '--quiet-rules').status, 0, '--quiet-rules is accepted (not exit 2) and checks the schemas only')
})
