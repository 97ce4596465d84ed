/**
 * The users stub is the reference implementation of the identity backend API: it must answer
 * exactly as docs/identity-backend.openapi.json says (every documented path, method and status,
 * bodies valid against the documented schemas), so the document and the stub stay in step.
 */
import t from 'tap'
import { build } from '../helper.js'
import { documentedOperations, loadIdentityBackendDocument, responseValidator,
  runScenarios } from '../helpers/identity-backend-conformance.js'

t.test('the users stub answers as the identity backend document says', async (t) => {
  const h = await build(t)
  const doc = loadIdentityBackendDocument()
  const operations = documentedOperations(doc)
  t.same(operations.map((o) => `${o.method} ${o.path}`).sort(), [
    'DELETE /internal/users/{id}/factors/{factor_id}', 'GET /internal/users', 'GET /internal/users/{id}',
    'GET /internal/users/{id}/factors',
    'POST /internal/credentials/check', 'PUT /internal/users/{id}/factors/{factor_id}'
  ], 'the calls of docs/identity-backend.md, the search by name and the factor records')
  t.same(
    operations.map((o) => o.scope).sort(),
    ['credentials:check', 'factors:read', 'factors:write', 'factors:write', 'users:read', 'users:read'],
    'each call names its scope'
  )

  for (const op of operations) {
    t.ok(h.users.hasRoute({ method: op.method as 'GET', url: op.path.replace(/\{(\w+)\}/g, ':$1') }),
      `the stub has ${op.method} ${op.path}`)
  }

  const validate = responseValidator(doc)
  const results = await runScenarios({
    baseUrl: `http://127.0.0.1:${(h.users.server.address() as { port: number }).port}`,
    keyRing: h.keyRing,
    active: { id: '1001', username: 'alice', password: 'alice-password', roles: ['user'] },
    inactive: { id: '1004', username: 'carol', password: 'carol-password' },
    factors: true
  })
  for (const r of results) {
    t.equal(r.status, r.expected, `${r.name}: ${r.expected}`)
    if (r.status === 204) {
      t.equal(r.body, null, `${r.name}: no body`)
      continue
    }
    t.match(r.contentType, /^application\/(problem\+)?json/, `${r.name}: JSON`)
    t.equal(validate(r.templatePath, r.method, r.status, r.body), null, `${r.name}: the body matches the documented schema`)
  }
  t.same(results.find((r) => r.name === 'right password')?.body, { id: '1001', username: 'alice', roles: ['user'] })
  t.same(results.find((r) => r.name === 'lookup of an inactive user')?.body,
    { id: '1004', username: 'carol', roles: ['user'], active: false })
  const failures = results.filter((r) => r.status === 401 && r.templatePath === '/internal/credentials/check'
    && !r.name.includes('assertion') && !r.name.includes('issuer') && !r.name.includes('audience'))
  t.equal(failures.length, 3)
  t.ok(failures.every((r) => JSON.stringify(r.body) === JSON.stringify(failures[0]!.body)),
    'wrong password, unknown and inactive users get the same body')

  // Every documented status was produced by some scenario.
  for (const op of operations) {
    for (const status of op.statuses) {
      t.ok(results.some((r) => r.templatePath === op.path && r.method === op.method && String(r.status) === status),
        `${op.method} ${op.path} ${status} is exercised`)
    }
  }
})

t.test('the validator is not a rubber stamp', async (t) => {
  const validate = responseValidator(loadIdentityBackendDocument())
  t.equal(validate('/internal/credentials/check', 'POST', 200, { id: '1', username: 'a', roles: ['user'] }), null)
  t.not(validate('/internal/credentials/check', 'POST', 200, { id: 1, username: 'a', roles: ['user'] }), null, 'a numeric id')
  t.not(validate('/internal/credentials/check', 'POST', 200, { id: '1', username: 'a', roles: ['user'], password_hash: 'x' }), null,
    'an extra member')
  t.not(validate('/internal/users/{id}', 'GET', 200, { id: '1', username: 'a', roles: [] }), null, 'active missing')
  t.not(validate('/internal/users/{id}', 'GET', 404, { title: 'Not found', status: 404, code: 'missing' }), null, 'another code')
  t.not(validate('/internal/credentials/check', 'POST', 500, {}), null, 'an undocumented status')
})
