/**
 * Configuration (docs/configuration.md and docs/abuse-protection.md): defaults, one-line errors naming the variable, and the
 * real entry point refusing to start (exit status 1) on an invalid value.
 */
import t from 'tap'
import { ensureBuilt, runToExit, type RunResult } from '../helpers/processes.js'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../src/config.js'
import { generatePrivateJwk } from '../../src/tokens/key-ring.js'


t.test('defaults match the contract', async (t) => {
  const c = loadConfig({})
  t.equal(c.port, 8080)
  t.equal(c.host, '127.0.0.1')
  t.equal(c.production, false)
  t.equal(c.redis.url, 'redis://127.0.0.1:6379')
  t.same(c.redis.clusterNodes, [], 'no cluster by default')
  t.equal(c.upstreams.users, 'http://127.0.0.1:3001')
  t.equal(c.upstreams.orders, 'http://127.0.0.1:3002')
  t.equal(c.jwt.issuer, 'auth-gateway')
  t.equal(c.jwt.audience, 'api')
  t.equal(c.jwt.accessTtl, 900)
  t.equal(c.jwt.refreshTtl, 604800)
  t.equal(c.jwt.reuseGrace, 10)
  t.equal(c.jwt.keysFile, undefined)
  t.equal(c.trustProxy, false, 'X-Forwarded-For ignored by default')
  t.same(c.corsOrigins, [])
  t.equal(c.cookieSecure, true)
  t.equal(c.upstreamTimeoutMs, 10000)
  t.equal(c.logLevel, 'info')
  t.same(c.limits, {
    loginPerIp: 10,
    lockoutThreshold: 5,
    lockoutSeconds: 900,
    refreshPerSession: 10,
    verifyPerIp: 60,
    apiPerUser: 600,
    apiPerClient: 600,
    publicPerIp: 60
  })
})

t.test('values are read and converted', async (t) => {
  const c = loadConfig({
    PORT: '9090',
    HOST: '0.0.0.0',
    REDIS_URL: 'rediss://cache.internal:6380/2',
    REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7001',
    USERS_URL: 'https://users.internal',
    ORDERS_URL: 'http://orders.internal:8000',
    JWT_ISSUER: 'iss-x',
    JWT_AUDIENCE: 'aud-x',
    ACCESS_TOKEN_TTL: '60',
    REFRESH_TOKEN_TTL: '3600',
    REFRESH_REUSE_GRACE: '0',
    JWT_KEYS_FILE: '/etc/gw/jwks.json',
    TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
    CORS_ORIGINS: 'https://a.example, https://b.example',
    COOKIE_SECURE: 'false',
    UPSTREAM_TIMEOUT_MS: '2500',
    LOG_LEVEL: 'debug',
    LOGIN_IP_LIMIT: '3',
    NODE_ENV: 'production'
  })
  t.equal(c.port, 9090)
  t.equal(c.host, '0.0.0.0')
  t.equal(c.redis.url, 'rediss://cache.internal:6380/2')
  t.same(c.redis.clusterNodes, [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }])
  t.equal(c.upstreams.users, 'https://users.internal')
  t.equal(c.jwt.accessTtl, 60)
  t.equal(c.jwt.refreshTtl, 3600)
  t.equal(c.jwt.reuseGrace, 0)
  t.equal(c.jwt.keysFile, '/etc/gw/jwks.json')
  t.same(c.trustProxy, ['10.0.0.0/8', '127.0.0.1'])
  t.same(c.corsOrigins, ['https://a.example', 'https://b.example'])
  t.equal(c.cookieSecure, false)
  t.equal(c.upstreamTimeoutMs, 2500)
  t.equal(c.logLevel, 'debug')
  t.equal(c.limits.loginPerIp, 3)
  t.equal(c.production, true)
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2, 'a hop count, as Fastify takes it')
  t.equal(loadConfig({ TRUST_PROXY: 'false' }).trustProxy, false)
  t.equal(loadConfig({ PORT: '' }).port, 8080, 'an empty variable counts as unset')
  t.equal(loadConfig({ COOKIE_SECURE: 'true' }).cookieSecure, true)
})

t.test('invalid values throw a ConfigError naming the variable', async (t) => {
  const cases: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['PORT', 'true'],
    ['PORT', '1e3'],
    ['PORT', '0x50'],
    ['PORT', ' 80'],
    ['ACCESS_TOKEN_TTL', '-1'],
    ['ACCESS_TOKEN_TTL', '0'],
    ['ACCESS_TOKEN_TTL', '1.5'],
    ['REFRESH_TOKEN_TTL', 'forever'],
    ['REFRESH_REUSE_GRACE', '-5'],
    ['UPSTREAM_TIMEOUT_MS', '0'],
    ['LOGIN_IP_LIMIT', '0'],
    ['LOCKOUT_SECONDS', 'ten'],
    ['VERIFY_IP_LIMIT', '99999999999999999999'],
    ['COOKIE_SECURE', 'maybe'],
    ['REDIS_CLUSTER_NODES', 'garbage'],
    ['REDIS_CLUSTER_NODES', 'host:1,host'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['LOG_LEVEL', 'loud'],
    ['USERS_URL', 'ftp://x'],
    ['ORDERS_URL', 'orders:3002'],
    ['USERS_URL', 'http://has space'],
    ['TRUST_PROXY', 'not-an-ip'],
    ['TRUST_PROXY', '10.0.0.0/33'],
    ['TRUST_PROXY', '10.0.0.1,::1/129'],
    ['TRUST_PROXY', '10.0.0.0/8/1']
  ]
  for (const [variable, value] of cases) {
    let caught: unknown
    try {
      loadConfig({ [variable]: value })
    } catch (err) {
      caught = err
    }
    const what = `${variable}=${JSON.stringify(value)}`
    t.type(caught, ConfigError, `${what} throws a ConfigError`)
    const err = caught as ConfigError
    t.ok(err?.message.startsWith(`${variable}`), `${what}: message starts with the variable (${err?.message})`)
    t.equal(err?.variable, variable, `${what}: names the variable`)
    t.notMatch(err?.message ?? '', /\n/, `${what}: one line`)
  }
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1/128,loopback' }).trustProxy,
    ['10.0.0.0/8', '127.0.0.1', '::1/128', 'loopback'], 'addresses, CIDR ranges and named ranges are accepted')
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({}).trustProxy, false, 'unset: forwarded headers ignored')
  const level = t.throws(() => loadConfig({ LOG_LEVEL: 'loud' })) as Error
  t.match(level.message, /info/, 'LOG_LEVEL lists the levels it accepts')
})

t.test('production requires JWT_KEYS_FILE', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), { name: 'ConfigError', variable: 'JWT_KEYS_FILE', message: /^JWT_KEYS_FILE/ })
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'production', JWT_KEYS_FILE: '/k.json' }))
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'development' }), 'only production refuses ephemeral keys')
})

t.test('the access TTL must be shorter than the refresh TTL', async (t) => {
  t.throws(() => loadConfig({ ACCESS_TOKEN_TTL: '600', REFRESH_TOKEN_TTL: '600' }), { name: 'ConfigError', message: /ACCESS_TOKEN_TTL/ })
  t.throws(() => loadConfig({ ACCESS_TOKEN_TTL: '700000' }), { name: 'ConfigError', message: /REFRESH_TOKEN_TTL/ },
    'against the default refresh TTL')
  t.throws(() => loadConfig({ REFRESH_TOKEN_TTL: '900' }), { name: 'ConfigError' }, 'against the default access TTL')
  t.doesNotThrow(() => loadConfig({ ACCESS_TOKEN_TTL: '599', REFRESH_TOKEN_TTL: '600' }))
})


/** Runs the built entry point (what `npm start` runs) with only `env`. */
function runServer (env: Record<string, string>): Promise<RunResult> {
  ensureBuilt()
  // A closed port for Redis, and a free one to listen on should start-up get that far.
  return runToExit('dist/src/server.js', [], { REDIS_URL: 'redis://127.0.0.1:1', PORT: '0', LOG_LEVEL: 'silent', ...env })
}

t.test('the entry point refuses to start on an invalid configuration', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const corrupt = join(dir, 'corrupt.json')
  await writeFile(corrupt, '{"keys": [')
  const broken = join(dir, 'broken.json')
  const key = await generatePrivateJwk()
  await writeFile(broken, JSON.stringify({ keys: [{ ...key, x: 'AAAA' }] }))

  const cases: Array<[string, Record<string, string>, string]> = [
    ['PORT=abc', { PORT: 'abc' }, 'PORT'],
    ['NODE_ENV=production without JWT_KEYS_FILE', { NODE_ENV: 'production' }, 'JWT_KEYS_FILE'],
    ['JWT_KEYS_FILE is not JSON', { JWT_KEYS_FILE: corrupt }, 'JWT_KEYS_FILE'],
    ['JWT_KEYS_FILE holds a key that does not import', { JWT_KEYS_FILE: broken }, 'JWT_KEYS_FILE'],
    ['JWT_KEYS_FILE does not exist', { JWT_KEYS_FILE: join(dir, 'missing.json') }, 'JWT_KEYS_FILE']
  ]
  await Promise.all(cases.map(([name, env, variable]) => t.test(name, async (t) => {
    const res = await runServer(env)
    t.equal(res.code, 1, `exit status 1 (signal ${String(res.signal)}, stderr ${res.stderr})`)
    const lines = res.stderr.trim().split('\n')
    t.equal(lines.length, 1, 'one line on stderr')
    t.match(lines[0], variable, `the line names ${variable}`)
    t.notMatch(res.stderr, /\n\s+at /, 'no stack trace')
    if (env.JWT_KEYS_FILE === broken) t.notOk(res.stderr.includes(key.d), 'the private key is not printed')
  })))
})
