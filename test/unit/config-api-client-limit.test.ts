/** API_CLIENT_LIMIT (docs/machine-clients.md): default 600 a minute, read as an integer, refused otherwise. */
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

t.test('API_CLIENT_LIMIT', async (t) => {
  t.equal(loadConfig({}).limits.apiPerClient, 600, 'default 600')
  t.equal(loadConfig({ API_CLIENT_LIMIT: '25' }).limits.apiPerClient, 25)
  for (const bad of ['0', '-1', '1.5', 'many']) {
    let error: unknown
    try { loadConfig({ API_CLIENT_LIMIT: bad }) } catch (err) { error = err }
    t.ok(error instanceof ConfigError && error.variable === 'API_CLIENT_LIMIT', `${bad} is refused naming the variable`)
  }
})
