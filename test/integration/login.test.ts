import t from 'tap'
import { build } from '../helper.js'

t.test('login', async (t) => {
  const h = await build(t)

  t.test('happy path returns tokens and the user', async (t) => {
    const res = await h.request('POST', '/auth/login', { body: { username: 'alice', password: 'alice-password' } })
    t.equal(res.status, 200)
    t.equal(res.body.token_type, 'Bearer')
    t.equal(res.body.expires_in, 900)
    t.equal(res.body.refresh_expires_in, 604800)
    t.same(res.body.user, { id: '1001', username: 'alice', roles: ['user'] })
    t.match(res.body.access, /^[\w-]+\.[\w-]+\.[\w-]+$/)
    t.match(res.body.refresh, /^[\w-]+\.[\w-]+\.[\w-]+$/)
    t.equal(res.headers.get('cache-control'), 'no-store')
  })

  for (const [username, password] of [['alice', 'wrong'], ['nobody', 'whatever'], ['carol', 'carol-password']]) {
    t.test(`invalid credentials: ${username}`, async (t) => {
      const res = await h.request('POST', '/auth/login', { body: { username, password } })
      t.equal(res.status, 401)
      t.equal(res.body.code, 'invalid_credentials')
      t.match(res.headers.get('content-type'), /^application\/problem\+json/)
      t.match(res.headers.get('www-authenticate'), /^Bearer/)
    })
  }

  t.test('bad requests', async (t) => {
    const cases = [
      { body: { username: 'alice' } },
      { body: { username: 'alice', password: 123 } },
      { body: { username: 'alice', password: 'x', cookie: 'yes' } },
      { rawBody: '{not json' },
      { rawBody: 'username=alice&password=x', contentType: 'application/x-www-form-urlencoded' },
      { rawBody: 'hello', contentType: 'text/plain' },
      { rawBody: '[]' },
      { rawBody: '' }
    ]
    for (const c of cases) {
      const res = await h.request('POST', '/auth/login', c)
      t.equal(res.status, 400, JSON.stringify(c))
      t.equal(res.body.code, 'invalid_request')
    }
  })
})
