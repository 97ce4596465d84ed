import t from 'tap'
import { build } from '../helper.js'

t.test('user lookup in the identity backend (GET /internal/users/{id})', async (t) => {
  const h = await build(t)

  t.test('the gateway looks a user up with a users:read assertion', async (t) => {
    t.same(await h.gateway.users.lookupUser('1001', 'req-1'), { id: '1001', username: 'alice', roles: ['user'], active: true })
    t.same(await h.gateway.users.lookupUser('1004', 'req-2'), { id: '1004', username: 'carol', roles: ['user'], active: false })
    t.equal(await h.gateway.users.lookupUser('9999', 'req-3'), null)
  })

  t.test('the users service refuses a lookup without an assertion, or with another scope', async (t) => {
    const bare = await h.users.inject({ method: 'GET', url: '/internal/users/1001' })
    t.equal(bare.statusCode, 401)
    const assertion = await h.gateway.tokens.signAssertion('users', 'auth-gateway', { scope: 'credentials:check' })
    const wrongScope = await h.users.inject({ method: 'GET', url: '/internal/users/1001', headers: { 'x-gateway-assertion': assertion } })
    t.equal(wrongScope.statusCode, 403)
  })

  t.test('the route table never reaches the internal lookup', async (t) => {
    const { access } = await h.login('admin')
    const res = await h.request('GET', '/internal/users/1001', { token: access })
    t.equal(res.status, 404)
    t.equal(res.body.code, 'not_found')
  })
})
