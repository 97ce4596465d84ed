/**
 * Answers to requests Node's HTTP parser refuses before Fastify sees them: malformed or smuggling
 * attempts (Content-Length with Transfer-Encoding, duplicate Content-Length) 400, oversized heads
 * 431, slow clients 408. Always problem+json, always closing the connection; nothing is forwarded.
 */
import type { Socket } from 'node:net'
import { ERROR_CATALOGUE } from '../errors.js'

function problemResponse (status: number, reason: string, code: string, title: string): string {
  const body = JSON.stringify({ type: `urn:auth-gateway:problem:${code}`, title, status, code })
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`
}

export function clientErrorHandler (err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  let response: string
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    response = problemResponse(431, 'Request Header Fields Too Large', 'headers_too_large', ERROR_CATALOGUE.headers_too_large.title)
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    response = problemResponse(408, 'Request Timeout', 'request_timeout', ERROR_CATALOGUE.request_timeout.title)
  } else {
    response = problemResponse(400, 'Bad Request', 'invalid_request', ERROR_CATALOGUE.invalid_request.title)
  }
  socket.end(response)
}
