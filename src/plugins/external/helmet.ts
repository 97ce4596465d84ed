/**
 * Security headers on every answer (docs/endpoints.md). The gateway serves no pages but /docs, the
 * dashboard and the demo (which set their own CSP).
 *
 * helmet computes the headers from these options; since they are the same for every answer they
 * are computed once at start-up and set by one synchronous hook (@fastify/helmet would rebuild
 * helmet's middleware and parse the CSP directives on every request).
 */
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import fp from 'fastify-plugin'
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

export default fp(async (fastify) => {
  const headers = helmetHeaders(OPTIONS)
  fastify.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
}, { name: 'helmet' })
