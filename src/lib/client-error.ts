/**
 * Answers to requests Node's HTTP parser refuses before Fastify sees them: malformed or smuggling
 * attempts (Content-Length with Transfer-Encoding, duplicate Content-Length) 400, oversized heads
 * 431, slow clients 408. Always problem+json, always closing the connection; nothing is forwarded.
 */
import type { Socket } from 'node:net'
import { ERROR_CATALOGUE, problemType, type ErrorCode } from '../errors.js'
import { SECURITY_HEADERS } from './security-headers.js'

/** The security headers of every gateway answer, as header lines. */
const SECURITY_HEADER_LINES = Object.entries(SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('')

function problemResponse (code: ErrorCode, reason: string): string {
  const { status, title } = ERROR_CATALOGUE[code]
  const body = JSON.stringify({ type: problemType(code), title, status, code })
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${SECURITY_HEADER_LINES}Connection: close\r\n\r\n${body}`
}

export function clientErrorHandler (err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  let response: string
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    response = problemResponse('headers_too_large', 'Request Header Fields Too Large')
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    response = problemResponse('request_timeout', 'Request Timeout')
  } else {
    response = problemResponse('invalid_request', 'Bad Request')
  }
  socket.end(response)
}
