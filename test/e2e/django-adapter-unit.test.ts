/**
 * The Django adapter's own unit tests (integrations/django/gateway_identity/tests.py), run by
 * Django's test runner with Debian's /usr/bin/python3 in the test project.
 */
import t from 'tap'
import { join } from 'node:path'
import { ROOT } from '../helpers/processes.js'
import { djangoMissing, manageAsync } from '../helpers/django.js'

// Django, gunicorn and PBKDF2 are slow on a loaded machine: more than .taprc's 180 s for this file.
t.setTimeout(300_000)

t.test('gateway_identity unit tests pass under manage.py test', async (t) => {
  const missing = djangoMissing()
  t.equal(missing, null, 'Debian\'s Django, PyJWT and gunicorn are installed')
  if (missing !== null) return
  const { code, output } = await manageAsync(join(ROOT, 'test/django/identity_project'),
    ['test', 'gateway_identity', '--noinput', '-v', '2'], {})
  if (code !== 0) t.comment(output.slice(-6000))
  t.equal(code, 0, 'manage.py test exits 0')
  const ran = /Ran (\d+) tests?/.exec(output)
  t.ok(ran !== null && Number(ran[1]) >= 15, `the adapter's tests ran (${ran?.[1] ?? 'none'})`)
  t.match(output, /\nOK\b/, 'Django says OK')
})
