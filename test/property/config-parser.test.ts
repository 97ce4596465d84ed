/**
 * Property-based test (fast-check) of the config parser: any environment, made of the contract's
 * variable names with arbitrary or near-valid values plus unknown names, either yields a config or
 * throws ConfigError naming a contract variable (the one-line start-up error), never anything else;
 * and an accepted value is used as given.
 */
import t from 'tap'
import fc from 'fast-check'
import { ConfigError, EnvSchema, loadConfig } from '../../src/config.js'

const NAMES = Object.keys(EnvSchema.properties)
const value = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.integer({ min: -10, max: 2_000_000 }).map(String),
  fc.constantFrom('', ' ', '0', '1', '65536', 'true', 'false', 'yes', 'production', 'development', 'test', 'debug', 'info', 'silent',
    'http://127.0.0.1:3001', 'redis://127.0.0.1:6379', 'not a url', '127.0.0.1:7000,127.0.0.1:7001', 'loopback', '10.0.0.0/8', '2',
    'https://a.example,https://b.example', '1e3', '0x10', '-1', '9'.repeat(30), 'NaN', '/nonexistent/jwks.json')
)
const env = fc.dictionary(fc.constantFrom(...NAMES, 'UNRELATED_VARIABLE', 'PATH'), value, { maxKeys: 8 })

t.test('the config parser returns a config or a ConfigError naming a variable, for any environment', async (t) => {
  let accepted = 0
  let refused = 0
  fc.assert(fc.property(env, (source) => {
    try {
      const config = loadConfig(source)
      accepted++
      // What was accepted is used: PORT and LOG_LEVEL as given, when given.
      if (source.PORT !== undefined && source.PORT !== '' && config.port !== Number(source.PORT)) return false
      return typeof config.port === 'number' && config.jwt.accessTtl < config.jwt.refreshTtl
    } catch (err) {
      refused++
      return err instanceof ConfigError && NAMES.includes(err.variable) && !err.message.includes('\n')
    }
  }), { numRuns: 3000 })
  t.ok(accepted > 0 && refused > 0, `both outcomes exercised: ${accepted} accepted, ${refused} refused`)
})
