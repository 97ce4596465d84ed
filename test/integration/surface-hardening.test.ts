/**
 * What the gateway exposes beyond its APIs: the dashboard serves only its own page, script and
 * style (no source map, even one left in the folder), and `/api/users/me` reaches the users
 * service for GET and HEAD only (a PATCH, PUT, DELETE or POST there is 404 and never forwarded).
 */
import t from 'tap'
import { writeFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { build } from '../helper.js'
import { directoryOf } from '../../services/users/app.js'
import { dashboardRoot } from '../../src/routes/admin/dashboard.js'

t.test('the dashboard serves its own files only; no source map', async (t) => {
  const h = await build(t)
  for (const file of ['admin.js', 'admin.css']) {
    t.equal((await fetch(`${h.url}/admin/${file}`)).status, 200, `${file} is served`)
  }
  // A map left in the folder (a local debug build) is not served either.
  const stray = join(dashboardRoot(), 'admin.js.map')
  await writeFile(stray, '{"version":3,"sources":["web/admin/main.ts"]}')
  t.teardown(() => rm(stray, { force: true }))
  const map = await fetch(`${h.url}/admin/admin.js.map`)
  t.equal(map.status, 404, 'admin.js.map is not served')
  t.notMatch(await map.text(), 'sources', 'and not its content')
})

t.test('/api/users/me: GET and HEAD reach the users service, other methods are 404 and never forwarded', async (t) => {
  const h = await build(t)
  const bob = await h.login('bob')
  const directory = directoryOf(h.users)
  t.equal((await h.request('GET', '/api/users/me', { token: bob.access })).status, 200, 'GET')
  t.equal((await h.request('HEAD', '/api/users/me', { token: bob.access })).status, 200, 'HEAD')
  const before = directory.get('1002')
  for (const method of ['PATCH', 'PUT', 'DELETE', 'POST']) {
    const res = await h.request(method, '/api/users/me', { token: bob.access, body: { roles: ['admin'], active: true } })
    t.equal(res.status, 404, `${method} is 404`)
    t.equal(res.body.code, 'not_found', `${method}: not_found`)
  }
  t.same(directory.get('1002'), before, 'the user record is unchanged')
})
