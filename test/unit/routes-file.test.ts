/**
 * Routes files (ROUTES_FILE, src/proxy/routes-file.ts): the shipped demo file is the demo table,
 * every problem is refused with the file, line, route or upstream and the reason, `${NAME}` is
 * limited to `*_URL` variables and never shown, a writable-by-others file is refused, matching is
 * by the longest whole-segment prefix whatever the order, and the shipped JSON Schema is the one
 * generated from the TypeBox schema. `npm run routes:check` and the server's start-up refusal are
 * run as the built programs.
 */
import t from 'tap'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { parse } from 'yaml'
import { DEMO_ROUTES_FILE, DEMO_URL_DEFAULTS, parseRoutesText, readRoutesFileSync, routesDiff,
  RoutesFileError } from '../../src/proxy/routes-file.js'
import { RouteTable, type ProxyRoute } from '../../src/proxy/route-table.js'
import { routesJsonSchema } from '../../src/proxy/routes-file-schema.js'
import { ensureBuilt, ROOT, runToExit } from '../helpers/processes.js'

const VARS = { ...DEMO_URL_DEFAULTS, BILLING_URL: 'http://127.0.0.1:3010' }

/** The problems of a file's text (none: []). */
function problemsOf (text: string, vars: Record<string, string> = VARS): readonly string[] {
  try {
    parseRoutesText('routes.yaml', text, { vars })
    return []
  } catch (err) {
    if (err instanceof RoutesFileError) return err.problems
    throw err
  }
}

function problemsOfFile (file: string): readonly string[] {
  try {
    readRoutesFileSync(file, { vars: VARS })
    return []
  } catch (err) {
    if (err instanceof RoutesFileError) return err.problems
    throw err
  }
}

const HEAD = 'upstreams:\n  users: { url: "${USERS_URL}" }\n  billing: { url: "${BILLING_URL}" }\nroutes:\n'

t.test('the shipped demo file is the demo table of docs/proxy.md', async (t) => {
  const spec = readRoutesFileSync(DEMO_ROUTES_FILE, { vars: DEMO_URL_DEFAULTS })
  t.same([...spec.upstreams.values()], [
    { name: 'users', url: 'http://127.0.0.1:3001', timeoutMs: undefined },
    { name: 'orders', url: 'http://127.0.0.1:3002', timeoutMs: undefined }
  ])
  t.same(spec.routes, [
    { path: '/api/users/me', exact: true, upstream: 'users', methods: ['GET', 'HEAD'], limit: 'api', bodyLimit: 1048576 },
    { path: '/api/users/me/password', exact: true, upstream: 'users', methods: ['POST'], limit: 'api', passwordCheck: true,
      bodyLimit: 1048576 },
    { path: '/api/users', upstream: 'users', roles: ['admin'], limit: 'api', bodyLimit: 1048576 },
    { path: '/api/orders', upstream: 'orders', limit: 'api', scopes: { GET: ['orders:read'], POST: ['orders:write'] }, bodyLimit: 1048576 },
    { path: '/api/orders/ws', exact: true, upstream: 'orders', limit: 'api', websocket: true, bodyLimit: 1048576 }
  ])
  t.match(spec.sha256, /^[0-9a-f]{64}$/)
})

t.test('a valid file: defaults, JSON as well as YAML, `${NAME}` of a *_URL variable', async (t) => {
  const spec = parseRoutesText('r.yaml', HEAD + [
    '  - { path: /api/billing, upstream: billing, roles: [billing] }',
    '  - { path: /status, exact: true, upstream: billing, public: true }'
  ].join('\n'), { vars: VARS })
  t.equal(spec.upstreams.get('billing')?.url, 'http://127.0.0.1:3010')
  t.same(spec.routes[1], { path: '/status', exact: true, public: true, upstream: 'billing', limit: 'public', bodyLimit: 1048576 },
    'a public route is limited per IP by default')
  const json = JSON.stringify({ upstreams: { billing: { url: 'https://billing.internal:8443/base/', timeout_ms: 5000 } },
    routes: [{ path: '/api/b', upstream: 'billing', body_limit: 5 }] })
  const fromJson = parseRoutesText('r.json', json, { vars: VARS })
  t.same(fromJson.upstreams.get('billing'), { name: 'billing', url: 'https://billing.internal:8443/base', timeoutMs: 5000 })
  t.equal(
    parseRoutesText('r.yaml', HEAD + '  - { path: /api/b/ws, upstream: billing, websocket: true }', { vars: VARS }).routes[0]?.websocket,
    true,
    'websocket: true is a route property'
  )
  t.equal(fromJson.routes[0]?.bodyLimit, 5)
})

t.test('invalid files: each problem names the file, the line, the route or upstream and the problem', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['unknown field (a typo of roles)', '  - { path: /api/b, upstream: billing, role: [admin] }',
      /^routes\.yaml:5: route \/api\/b: unknown field "role"$/],
    ['unknown upstream', '  - { path: /api/b, upstream: nobody }', /^routes\.yaml:5: route \/api\/b: unknown upstream "nobody"$/],
    ['roles: []', '  - { path: /api/b, upstream: billing, roles: [] }', /^routes\.yaml:5: route \/api\/b: roles: /],
    ['scopes: {}', '  - { path: /api/b, upstream: billing, scopes: {} }', /^routes\.yaml:5: route \/api\/b: scopes: /],
    ['scopes of an unknown method', '  - { path: /api/b, upstream: billing, scopes: { FETCH: [a] } }', /^routes\.yaml:5: route \/api\/b: unknown field "FETCH"$/],
    ['public with roles', '  - { path: /api/b, upstream: billing, public: true, roles: [admin] }', /route \/api\/b: public together with roles/],
    ['public with scopes', '  - { path: /api/b, upstream: billing, public: true, scopes: { GET: [a] } }', /route \/api\/b: public together with scopes/],
    ['public with password_check', '  - { path: /api/b, upstream: billing, public: true, password_check: true }', /route \/api\/b: public together with password_check/],
    ['public with step_up_max_age', '  - { path: /api/b, upstream: billing, public: true, step_up_max_age: 60 }', /route \/api\/b: public together with step_up_max_age/],
    ['public with limit api', '  - { path: /api/b, upstream: billing, public: true, limit: api }', /route \/api\/b: public together with limit: api/],
    ['step_up_max_age of 0', '  - { path: /api/b, upstream: billing, step_up_max_age: 0 }', /route \/api\/b: step_up_max_age: /],
    ['unknown method', '  - { path: /api/b, upstream: billing, methods: [GETS] }', /route \/api\/b: methods: must be one of GET, HEAD/],
    ['path with a trailing slash', '  - { path: /api/b/, upstream: billing }', /route \/api\/b\/: path must be a normalized path/],
    ['path with a dot segment', '  - { path: /api/../b, upstream: billing }', /route \/api\/\.\.\/b: path must be a normalized path/],
    ['the root path', '  - { path: /, upstream: billing }', /route \/: path must be/],
    ['duplicate path', '  - { path: /api/b, upstream: billing }\n  - { path: /api/b, upstream: users }',
      /^routes\.yaml:6: route \/api\/b: duplicate route \(same path and exact as the route at line 5\)$/],
    ['missing path', '  - { upstream: billing }', /^routes\.yaml:5: route #1: missing field "path"$/],
    ['YAML syntax error', '  - { path: /api/b, upstream: billing\n', /^routes\.yaml:\d+: file: /]
  ]
  for (const [name, routes, expected] of cases) {
    const problems = problemsOf(HEAD + routes)
    t.ok(problems.some((p) => expected.test(p)), `${name}: ${problems.join(' | ')}`)
  }
  t.same(
    problemsOf(HEAD + '  - { path: /api/b, upstream: billing }\n  - { path: /api/b, exact: true, upstream: users }'),
    [],
    'the same path once exact and once not is no duplicate'
  )
  t.same(
    parseRoutesText('routes.yaml', HEAD + '  - { path: /api/b, upstream: billing, roles: [admin], step_up_max_age: 300 }', { vars: VARS })
      .routes[0]?.stepUpMaxAge,
    300,
    'step_up_max_age is accepted and reaches the route (enforced by src/proxy/decide.ts)'
  )
  t.same(problemsOf('upstreams: {}\nroutes: []\nextra: 1\n').length, 2, 'no upstream, and an unknown top-level field')
})

t.test('upstream urls: http(s) only, no userinfo, `${NAME}` of *_URL variables only, values never shown', async (t) => {
  const secret = 's3cret-value-7'
  const vars = { ...VARS, SECRET: secret, LEAKY_URL: `http://me:${secret}@billing.internal`, BAD_URL: `not a url ${secret}` }
  const cases: Array<[string, RegExp]> = [
    ['ftp://billing', /upstream x: url must be http or https/],
    ['http://user:pw@billing', /upstream x: url must not carry userinfo/],
    ['not a url', /upstream x: url is not a valid URL/],
    ['http://billing/?a=1', /upstream x: url must not have a query or fragment/],
    ['${SECRET}', /upstream x: url: \$\{SECRET\} is not allowed \(only environment variables whose names end in _URL\)/],
    ['http://${SECRET}.internal', /\$\{SECRET\} is not allowed/],
    ['${UNSET_URL}', /upstream x: url: \$\{UNSET_URL\} is not set/],
    ['${LEAKY_URL}', /upstream x: url must not carry userinfo/],
    ['${BAD_URL}', /upstream x: url is not a valid URL/]
  ]
  for (const [url, expected] of cases) {
    const problems = problemsOf(`upstreams:\n  x: { url: "${url}" }\nroutes: []\n`, vars)
    t.equal(problems.length, 1, url)
    t.match(problems[0], /^routes\.yaml:2: /, 'the line of the url')
    t.match(problems[0], expected, url)
    t.notOk(problems.join('\n').includes(secret), 'no interpolated value in the message')
    t.notOk(problems.join('\n').includes('pw'), 'no password of a literal url in the message')
  }
  t.match(problemsOf('upstreams:\n  x: { url: "http://a", timeout_ms: 5, url2: "${SECRET}" }\nroutes: []\n', vars)[0],
    /unknown field "url2"/, '`${NAME}` anywhere else is an unknown field, never interpolated')
  const literal = parseRoutesText('routes.yaml', HEAD + '  - { path: /api/b, upstream: billing, roles: ["${BILLING_URL}", "${SECRET}"] }',
    { vars })
  t.same(literal.routes[0]?.roles, ['${BILLING_URL}', '${SECRET}'], '`${NAME}` outside url is plain text, never interpolated')
  t.notOk(JSON.stringify(literal.routes).includes(secret))
  t.match(problemsOf('upstreams:\n  Billing: { url: "http://a" }\nroutes: []\n')[0], /upstream Billing: invalid upstream name/)
  t.match(problemsOf('upstreams:\n  users: { url: "http://elsewhere:1" }\nroutes: []\n')[0],
    /upstream users: users is the identity backend/, 'users is always USERS_URL')
})

t.test('a file that others may write is refused; owner-only is fine', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-routes-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'routes.yaml')
  await writeFile(file, await readFile(DEMO_ROUTES_FILE))
  for (const mode of [0o664, 0o646, 0o666]) {
    await chmod(file, mode)
    t.match(problemsOfFile(file), [new RegExp(`^${file}: file: writable by group or others`)], mode.toString(8))
  }
  await chmod(file, 0o644)
  t.equal(readRoutesFileSync(file, { vars: VARS }).routes.length, 5)
  t.match(problemsOfFile(join(dir, 'missing.yaml')), [/missing\.yaml: file: cannot be read \(ENOENT\)/])
})

t.test('matching: the longest whole-segment prefix, whatever the order of the file', async (t) => {
  const route = (path: string, extra: Partial<ProxyRoute> = {}): ProxyRoute => ({ path, upstream: 'billing', limit: 'api', ...extra })
  const routes = [route('/api'), route('/api/billing'), route('/api/billing/admin', { roles: ['admin'] }),
    route('/api/billing/me', { exact: true })]
  for (const order of [routes, [...routes].reverse(), [routes[2]!, routes[0]!, routes[3]!, routes[1]!]]) {
    const table = new RouteTable(order)
    t.equal(table.match('/api/billing/admin/x')?.path, '/api/billing/admin')
    t.equal(table.match('/api/billing/admin')?.path, '/api/billing/admin')
    t.equal(table.match('/api/billing/adminx')?.path, '/api/billing', 'whole segments only')
    t.equal(table.match('/api/billingx')?.path, '/api', 'whole segments only')
    t.equal(table.match('/api/billing/me')?.path, '/api/billing/me')
    t.equal(table.match('/api/billing/me/x')?.path, '/api/billing', 'an exact route matches its path alone')
    t.equal(table.match('/apix'), undefined)
    t.equal(table.match('/'), undefined)
  }
  const both = new RouteTable([route('/a'), route('/a', { exact: true, public: true, limit: 'public' })])
  t.equal(both.match('/a')?.exact, true, 'the exact route wins over the prefix route of the same path')
  t.equal(both.match('/a/b')?.exact, undefined)
})

t.test('reload diff: routes added, removed and made public', async (t) => {
  const r = (path: string, extra: Partial<ProxyRoute> = {}): ProxyRoute => ({ path, upstream: 'b', limit: 'api', ...extra })
  t.same(routesDiff([r('/a'), r('/b'), r('/c', { exact: true })],
    [r('/a', { public: true, limit: 'public' }), r('/c', { exact: true }), r('/d')]), {
    added: ['/d'], removed: ['/b'], made_public: ['/a']
  })
})

t.test('the shipped JSON Schema is the one generated from the TypeBox schema, and accepts the shipped files', async (t) => {
  const shipped = JSON.parse(await readFile(join(ROOT, 'config/routes.schema.json'), 'utf8')) as Record<string, unknown>
  t.same(shipped, routesJsonSchema(), 'config/routes.schema.json is up to date (npm run routes:schema)')
  const validate = new Ajv({ strict: false }).compile(shipped)
  for (const file of ['config/demo-routes.yaml', 'config/routes.example.yaml']) {
    t.ok(validate(parse(await readFile(join(ROOT, file), 'utf8'))), `${file}: ${JSON.stringify(validate.errors)}`)
  }
  t.notOk(validate({ upstreams: { a: { url: 'http://a' } }, routes: [{ path: '/a', upstream: 'a', role: ['x'] }] }),
    'editors flag an unknown field too')
})

t.test('the example file is valid', async (t) => {
  const spec = readRoutesFileSync(join(ROOT, 'config/routes.example.yaml'), { vars: VARS })
  t.ok(spec.upstreams.has('billing'))
})

t.test('npm run routes:check and the server, as programs', async (t) => {
  ensureBuilt()
  const dir = await mkdtemp(join(tmpdir(), 'gw-routes-check-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const bad = join(dir, 'bad.yaml')
  await writeFile(bad, HEAD + '  - { path: /api/b, upstream: billing, role: [admin] }\n  - { path: /api/c, upstream: nobody }\n',
    { mode: 0o644 })
  const secretFile = join(dir, 'secret.yaml')
  await writeFile(secretFile, 'upstreams:\n  x: { url: "${SECRET}" }\nroutes: []\n', { mode: 0o644 })

  const ok = await runToExit('dist/src/cli/routes-check.js', [DEMO_ROUTES_FILE], {})
  t.same([ok.code, ok.stdout, ok.stderr], [0, '', ''], 'valid: silent, exit 0')
  const res = await runToExit('dist/src/cli/routes-check.js', [bad], { BILLING_URL: 'http://127.0.0.1:3010' })
  t.equal(res.code, 1)
  t.equal(res.stdout, '')
  t.same(res.stderr.trim().split('\n'), [`${bad}:5: route /api/b: unknown field "role"`],
    'one line per problem (the schema stage stops before the rules)')
  const secret = await runToExit('dist/src/cli/routes-check.js', [secretFile], { SECRET: 'hunter2-secret' })
  t.equal(secret.code, 1)
  t.match(secret.stderr, /\$\{SECRET\} is not allowed/)
  t.notOk(secret.stderr.includes('hunter2'), 'the value is never printed')

  const write = async (name: string, routes: string, head = HEAD): Promise<string> => {
    const f = join(dir, name)
    await writeFile(f, head + routes + '\n', { mode: 0o644 })
    return f
  }
  const billing = { BILLING_URL: 'http://127.0.0.1:3010' }
  const cases: Array<[string, string, Record<string, string>, RegExp]> = [
    ['unknown field', bad, billing, /route \/api\/b: unknown field "role"/],
    ['unknown upstream', await write('upstream.yaml', '  - { path: /api/b, upstream: nobody }'), billing,
      /upstream\.yaml:5: route \/api\/b: unknown upstream "nobody"/],
    ['bad URL', await write('url.yaml', '  - { path: /api/b, upstream: billing }', HEAD.replace('${BILLING_URL}', 'ftp://billing')),
      billing, /url\.yaml:3: upstream billing: url must be http or https/],
    ['duplicate path', await write('dup.yaml', '  - { path: /api/b, upstream: billing }\n  - { path: /api/b, upstream: users }'), billing,
      /dup\.yaml:6: route \/api\/b: duplicate route/],
    ['YAML syntax error', await write('syntax.yaml', '  - { path: /api/b, upstream: billing'), billing, /syntax\.yaml:\d+: file: /],
    ['secret-looking variable', secretFile, { SECRET: 'hunter2-secret' }, /upstream x: url: \$\{SECRET\} is not allowed/],
    ['missing file', join(dir, 'missing.yaml'), {}, /missing\.yaml: file: cannot be read/]
  ]
  await Promise.all(cases.map(([name, file, env, expected]) => t.test(`the server refuses to start: ${name}`, async (t) => {
    const run = await runToExit('dist/src/server.js', [],
      { REDIS_URL: 'redis://127.0.0.1:1', PORT: '0', LOG_LEVEL: 'silent', ROUTES_FILE: file, ...env })
    t.equal(run.code, 1, `exit status 1 (stderr ${run.stderr})`)
    t.match(run.stderr, new RegExp(`invalid routes file: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), 'names the file')
    t.match(run.stderr, expected)
    t.notMatch(run.stderr, /\n\s+at /, 'no stack trace')
    t.notOk(run.stderr.includes('hunter2'), 'no secret')
  })))
})
