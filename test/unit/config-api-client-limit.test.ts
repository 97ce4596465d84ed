/** API_CLIENT_LIMIT (contract 13): default 600 a minute, read as an integer, refused otherwise. */
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

t.test('API_CLIENT_LIMIT', async (t) => {
  t.equal(loadConfig({}).limits.apiPerClient, 600, 'default 600')
  t.equal(loadConfig({ API_CLIENT_LIMIT: '25' }).limits.apiPerClient, 25)
  for (const bad of ['0', '-1', '1.5', 'many']) {
    t.throws(() => loadConfig({ API_CLIENT_LIMIT: bad }), (err: unknown) => err instanceof ConfigError && err.variable === 'API_CLIENT_LIMIT', `${bad} is refused naming the variable`)
  }
})
