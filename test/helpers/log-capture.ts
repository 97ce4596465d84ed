/** A pino destination for tests: keeps every complete line written to it (JSON, one per line). */
import { Writable } from 'node:stream'

export function captureLogLines (lines: string[] = []): { stream: Writable, lines: string[] } {
  let pending = ''
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      pending += chunk.toString('utf8')
      const parts = pending.split('\n')
      pending = parts.pop() ?? ''
      lines.push(...parts.filter((l) => l.length > 0))
      done()
    }
  })
  return { stream, lines }
}
