/**
 * The security headers of every gateway answer, computed once by helmet from one set of options:
 * set by src/plugins/external/helmet.ts on Fastify's answers and written by src/lib/client-error.ts
 * on the raw answers to requests Node's HTTP parser refuses.
 */
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import helmet, { type HelmetOptions } from 'helmet'

const OPTIONS: HelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"]
    }
  },
  frameguard: { action: 'deny' },
  strictTransportSecurity: { maxAge: 31536000, includeSubDomains: true },
  referrerPolicy: { policy: 'no-referrer' },
  crossOriginResourcePolicy: { policy: 'same-site' }
}

/** The headers helmet sets with `options`, read off a response that is never sent. */
export function helmetHeaders (options: HelmetOptions): Readonly<Record<string, string>> {
  const req = new IncomingMessage(new Socket())
  const res = new ServerResponse(req)
  helmet(options)(req, res, (err?: unknown) => { if (err !== undefined && err !== null) throw err })
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(res.getHeaders())) headers[name] = String(value)
  return Object.freeze(headers)
}

/** The gateway's own security headers (lower-case names). */
export const SECURITY_HEADERS = helmetHeaders(OPTIONS)
