/**
 * A Server-Sent Events reader for tests: opens the stream over node:http, parses messages and
 * comments as they arrive, and lets a test wait for one (never a fixed sleep).
 */
import { request, type IncomingHttpHeaders } from 'node:http'
import { waitFor } from './redis-server.js'

export interface SseMessage { id?: string, data?: string, comment?: string }

export interface SseConnection {
  status: number
  headers: IncomingHttpHeaders
  /** The body when the answer was not a stream (problem+json). */
  text: string
  messages: SseMessage[]
  ended: boolean
  /** Waits until a message matches; returns it. */
  next: (match: (m: SseMessage) => boolean, what: string, timeoutMs?: number) => Promise<SseMessage>
  close: () => void
}

export function openSse (baseUrl: string, path: string, token?: string): Promise<SseConnection> {
  const { hostname, port } = new URL(baseUrl)
  const headers: Record<string, string> = { accept: 'text/event-stream' }
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port: Number(port), path, headers, agent: false }, (res) => {
      const conn: SseConnection = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: '',
        messages: [],
        ended: false,
        next: async (match, what, timeoutMs = 10_000) => {
          let found: SseMessage | undefined
          await waitFor(() => { found = conn.messages.find(match); return found !== undefined }, what, timeoutMs)
          return found!
        },
        close: () => { req.destroy() }
      }
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        conn.text += chunk
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) conn.messages.push({ comment: line.slice(1).trim() })
          }
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n')
          const id = block.split('\n').find((l) => l.startsWith('id:'))?.slice(3).trim()
          if (data !== '') conn.messages.push({ data, ...(id !== undefined ? { id } : {}) })
        }
      })
      const done = (): void => { conn.ended = true }
      res.on('end', done)
      res.on('close', done)
      res.on('error', done)
      resolve(conn)
    })
    req.on('error', reject)
    req.end()
  })
}
