/**
 * The client's `websocket(path)` in Node (memory mode, `ws` as the WebSocket): a ticket, then the
 * socket; a close with `session_revoked` ends the session in the client too, with no retry.
 */
import t from 'tap'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import WebSocket from 'ws'
import { build } from '../helper.js'
import { waitFor } from '../helpers/redis-server.js'
import { buildClient } from '../../scripts/build-client.mjs'
import type * as ClientModule from '../../client/src/index.js'

await buildClient()
const { createAuthClient } = await import(pathToFileURL(join(
  import.meta.dirname,
  '..',
  '..',
  'dist',
  'client',
  'auth-client.js'
)).href) as typeof ClientModule

t.test('websocket(path): a ticket, the socket, and the session ends with it', async (t) => {
  const h = await build(t)
  const auth = createAuthClient({ baseUrl: h.url, mode: 'memory', WebSocket: WebSocket as unknown as typeof globalThis.WebSocket })
  t.teardown(() => auth.close())
  const changes: Array<string | null> = []
  auth.onChange((user) => changes.push(user?.username ?? null))
  await auth.login('alice', 'alice-password')
  const socket = await auth.websocket('/api/orders/ws')
  const messages: string[] = []
  let closed: { code: number, reason: string } | null = null
  socket.addEventListener('message', (event) => { messages.push(String(event.data)) })
  socket.addEventListener('close', (event) => { closed = { code: event.code, reason: event.reason } })
  await waitFor(() => messages.length > 0, 'the greeting')
  t.same(JSON.parse(messages[0]!), { hello: 'alice', url: '/api/orders/ws' }, 'opened with a ticket, which the upstream never saw')
  // Another client of the same user logs the session out (as another tab or device would).
  t.equal((await h.request('POST', '/auth/logout-all', { token: (await h.login('alice')).access })).status, 204)
  await waitFor(() => closed !== null, 'the close')
  t.same(closed, { code: 1008, reason: 'session_revoked' })
  await waitFor(() => auth.user() === null, 'the client to end the session')
  t.same(changes, ['alice', null], 'onChange told the page; no retry')
})
