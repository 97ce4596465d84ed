/**
 * The orders stub's live features, for the gateway's live connections (docs/live-connections.md):
 * a WebSocket at /api/orders/ws (first message `{"hello": <username>, "url": <the URL it was asked
 * for>}`, then every message echoed back) and GET /api/orders/events, Server-Sent Events, one event
 * a second for as long as the client stays. Both need the gateway's assertion, like every route.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { PassThrough } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { WebSocketServer } from 'ws'
import { AssertionVerifier, type AssertionVerifierOptions } from '../shared/assertion-verifier.js'

export const ORDERS_WS_PATH = '/api/orders/ws'

function refuse (socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
}

export function addLiveOrders (app: FastifyInstance, verifierOptions: AssertionVerifierOptions): void {
  const verifier = new AssertionVerifier(verifierOptions)
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    const url = req.url ?? '/'
    if (url.split('?')[0] !== ORDERS_WS_PATH) { refuse(socket, '404 Not Found'); return }
    const assertion = req.headers['x-gateway-assertion']
    if (typeof assertion !== 'string') { refuse(socket, '401 Unauthorized'); return }
    verifier.verify(assertion, { method: 'GET', url }).then((payload) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        const username = typeof payload.username === 'string' ? payload.username : payload.sub
        ws.send(JSON.stringify({ hello: username, url }))
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
      })
    }, () => refuse(socket, '401 Unauthorized'))
  })
  app.addHook('onClose', async () => {
    for (const ws of wss.clients) ws.terminate()
    wss.close()
  })

  app.get('/api/orders/events', async (request, reply) => {
    const stream = new PassThrough()
    let n = 0
    const send = (): void => {
      n++
      stream.write(`id: ${n}\nevent: order-status\ndata: ` +
        `${JSON.stringify({ n, user_id: request.caller!.sub, at: new Date().toISOString() })}\n\n`)
    }
    send()
    const timer = setInterval(send, 1000)
    request.raw.socket.once('close', () => { clearInterval(timer); stream.end() })
    stream.once('close', () => clearInterval(timer))
    return reply.type('text/event-stream').header('cache-control', 'no-cache').send(stream)
  })
}
