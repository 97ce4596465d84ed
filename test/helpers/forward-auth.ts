/** Asking /auth/check as a proxy at a given loopback address (Linux routes all of 127/8 to lo). */
import { request as httpRequest } from 'node:http'

export interface CheckAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  body: any
}

/** One request from `from` (e.g. 127.0.0.2) to the gateway at `baseUrl`. */
export async function askFrom (baseUrl: string, from: string, method: string, path: string,
  headers: Record<string, string> = {}): Promise<CheckAnswer> {
  const url = new URL(path, baseUrl)
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method, headers, localAddress: from }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: any = null
        try { body = text === '' ? null : JSON.parse(text) } catch { body = null }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}
