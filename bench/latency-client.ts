/**
 * Latency with microsecond resolution for `make bench` (autocannon's latencies are whole
 * milliseconds): Debian's wrk (`wrk -t1 -cN --latency`, one thread, N connections, each sending
 * its next request when the last answer is in), or, where wrk is not installed, a client of the
 * same shape in this process (undici, N loops, process.hrtime.bigint per request).
 */
import { execFile } from 'node:child_process'
import { Pool } from 'undici'

export interface LatencyResult {
  tool: 'wrk' | 'undici'
  connections: number
  requests: number
  rps: number
  /** Microseconds. */
  p50: number
  p90: number
  p99: number
  max: number
  /** Answers that were not 2xx/3xx, and socket errors (connect, read, write, timeout); either makes the run invalid. */
  non2xx: number
  socketErrors: number
}

const UNIT_US: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 }

/** A wrk time ("140.00us", "1.23ms", "2.00s") in microseconds. */
export function wrkMicros (text: string): number {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim())
  if (match === null) throw new Error(`not a wrk time: ${JSON.stringify(text)}`)
  // wrk prints two decimals: rounded to a hundredth of a microsecond, 40.59ms is 40590 and not 40590.00000000001.
  return Math.round(Number(match[1]) * UNIT_US[match[2]!]! * 100) / 100
}

/** The figures of `wrk --latency` output. */
export function parseWrk (output: string, connections: number): LatencyResult {
  const percentile = (p: number): number => {
    const match = new RegExp(`^[ \\t]*${p}%[ \\t]+(\\S+)[ \\t]*$`, 'm').exec(output)
    if (match === null) throw new Error(`wrk output without its ${p}% latency:\n${output}`)
    return wrkMicros(match[1]!)
  }
  const stats = /^[ \t]*Latency[ \t]+(\S+)[ \t]+(\S+)[ \t]+(\S+)/m.exec(output)
  const total = /^[ \t]*(\d+) requests in/m.exec(output)
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output)
  if (stats === null || total === null || rps === null) throw new Error(`unexpected wrk output:\n${output}`)
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output)
  return {
    tool: 'wrk',
    connections,
    requests: Number(total[1]),
    rps: Number(rps[1]),
    p50: percentile(50),
    p90: percentile(90),
    p99: percentile(99),
    max: wrkMicros(stats[3]!),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    socketErrors: errors === null ? 0 : errors.slice(1).reduce((a, n) => a + Number(n), 0)
  }
}

/** Whether wrk is on the PATH. */
export async function hasWrk (): Promise<boolean> {
  return await new Promise((resolve) => {
    execFile('wrk', ['--version'], (err) => {
      // wrk --version prints its banner and exits 1; only a missing command is an error without an exit code.
      resolve(err === null || typeof err.code === 'number')
    })
  })
}

/** `wrk -t1 -c<connections> -d<seconds>s --latency` with `headers`, against `url`. */
export async function wrkRun (url: string, headers: Record<string, string>, connections: number, seconds: number):
  Promise<LatencyResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '10s']
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`)
  args.push(url)
  const output = await new Promise<string>((resolve, reject) => {
    execFile('wrk', args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`wrk failed: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
  return parseWrk(output, connections)
}

/** The same measurement without wrk: `connections` loops on one undici Pool, each request timed on its own. */
export async function undiciRun (url: string, headers: Record<string, string>, connections: number, seconds: number):
  Promise<LatencyResult> {
  const { origin, pathname, search } = new URL(url)
  const pool = new Pool(origin, { connections, pipelining: 1 })
  const samples: number[] = []
  let non2xx = 0
  let socketErrors = 0
  const until = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9))
  const started = process.hrtime.bigint()
  await Promise.all(Array.from({ length: connections }, async () => {
    while (process.hrtime.bigint() < until) {
      const t0 = process.hrtime.bigint()
      try {
        const res = await pool.request({ path: pathname + search, method: 'GET', headers })
        await res.body.dump()
        if (res.statusCode >= 400) non2xx++
        samples.push(Number(process.hrtime.bigint() - t0) / 1e3)
      } catch {
        socketErrors++
      }
    }
  }))
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9
  await pool.close()
  samples.sort((a, b) => a - b)
  const at = (p: number): number =>
    samples.length === 0 ? 0 : samples[Math.min(samples.length - 1, Math.ceil(samples.length * p / 100) - 1)]!
  return {
    tool: 'undici',
    connections,
    requests: samples.length,
    rps: samples.length / elapsed,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: samples.at(-1) ?? 0,
    non2xx,
    socketErrors
  }
}
