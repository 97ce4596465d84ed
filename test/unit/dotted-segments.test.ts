import t from 'tap'
import { escapeDottedSegments, unescapeDottedSegments } from '../../src/proxy/dotted-segments.js'

t.test('paths without a double dot are unchanged', async (t) => {
  for (const path of ['/', '/api/orders', '/api/orders/a.b/c.', '/api/orders/.well-known']) {
    t.equal(escapeDottedSegments(path), path)
    t.equal(unescapeDottedSegments(path), path)
  }
})

t.test('dotted segments pass reply-from\'s check and come back as sent', async (t) => {
  for (const path of ['/api/orders/...', '/api/orders/..draft/x..', '/api/....', '/api/a...b/c']) {
    const escaped = escapeDottedSegments(path)
    const decoded = decodeURIComponent(escaped)
    t.notOk(decoded.includes('/..') || decoded.includes('../'), `${escaped} has no decoded "/.." or "../" (reply-from's refusal)`)
    t.equal(unescapeDottedSegments(escaped), path)
  }
})

t.test('the query string is never unescaped', async (t) => {
  t.equal(unescapeDottedSegments('/api/%252E%252E%252E?q=%252E'), '/api/...?q=%252E')
  t.equal(unescapeDottedSegments('/api/orders?q=%252E'), '/api/orders?q=%252E')
})
