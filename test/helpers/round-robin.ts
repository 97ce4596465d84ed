/**
 * An HTTP front that sends each request to the next of several gateway replicas, so that a suite
 * written for one gateway runs unchanged on two (`TEST_REPLICAS=2`, test/helper.ts): consecutive
 * requests of a test (a login, then a revocation, then the next request) reach different replicas.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RoundRobin { url: string, close: () => Promise<void> }

export async function startRoundRobin (targets: readonly string[]): Promise<RoundRobin> {
  const agent = new http.Agent({ keepAlive: true })
  let next = 0
  const server = http.createServer((req, res) => {
    const target = new URL(targets[next++ % targets.length]!)
    const upstream = http.request({
      agent, host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders)
      answer.pipe(res)
    })
    upstream.on('error', () => { res.destroy() })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      agent.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}
