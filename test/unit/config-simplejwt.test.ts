/** The variables of docs/simplejwt-api.md: SIMPLEJWT_COMPAT, LEGACY_SUNSET, LEGACY_SIMPLEJWT_KEY / _UNTIL. */
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { throttledDetail } from '../../src/lib/drf-errors.js'

t.test('defaults: compat on, no sunset, no cut-over', async (t) => {
  const c = loadConfig({})
  t.equal(c.simplejwt.enabled, true)
  t.equal(c.simplejwt.sunset, undefined)
  t.equal(c.legacy, null)
  t.equal(loadConfig({ SIMPLEJWT_COMPAT: 'false' }).simplejwt.enabled, false)
})

t.test('LEGACY_SUNSET is an HTTP date, sent as IMF-fixdate', async (t) => {
  t.equal(loadConfig({ LEGACY_SUNSET: 'Wed, 01 Jul 2026 00:00:00 GMT' }).simplejwt.sunset, 'Wed, 01 Jul 2026 00:00:00 GMT')
  t.equal(loadConfig({ LEGACY_SUNSET: '2026-07-01T00:00:00Z' }).simplejwt.sunset, 'Wed, 01 Jul 2026 00:00:00 GMT')
  t.throws(() => loadConfig({ LEGACY_SUNSET: 'soon' }),
    new ConfigError('LEGACY_SUNSET', 'invalid value "soon" (must be an HTTP date, e.g. Wed, 01 Jul 2026 00:00:00 GMT)'))
})

t.test('the cut-over needs both the key and the date', async (t) => {
  const c = loadConfig({ LEGACY_SIMPLEJWT_KEY: 'k', LEGACY_SIMPLEJWT_UNTIL: '2026-07-01' })
  t.equal(c.legacy?.untilMs, Date.UTC(2026, 6, 1))
  t.same(Buffer.from(c.legacy!.key).toString(), 'k')
  t.throws(() => loadConfig({ LEGACY_SIMPLEJWT_KEY: 'k' }), { message: /^LEGACY_SIMPLEJWT_UNTIL: / })
  t.throws(() => loadConfig({ LEGACY_SIMPLEJWT_UNTIL: '2026-07-01' }), { message: /^LEGACY_SIMPLEJWT_KEY: / })
  t.throws(() => loadConfig({ LEGACY_SIMPLEJWT_KEY: 'k', LEGACY_SIMPLEJWT_UNTIL: 'July' }), { message: /^LEGACY_SIMPLEJWT_UNTIL: / })
  t.throws(() => loadConfig({ LEGACY_SIMPLEJWT_KEY: 'k', LEGACY_SIMPLEJWT_UNTIL: '2026-13-45' }), { message: /^LEGACY_SIMPLEJWT_UNTIL: / })
})

t.test('DRF throttled text: singular for one second', async (t) => {
  t.equal(throttledDetail(1), 'Request was throttled. Expected available in 1 second.')
  t.equal(throttledDetail(42), 'Request was throttled. Expected available in 42 seconds.')
})
