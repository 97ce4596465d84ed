/**
 * Options of the Fastify instance itself (they cannot be set by a plugin): logging with redaction,
 * request ids, trust proxy, and the limits that keep slow or oversized clients from holding sockets.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Server } from 'node:http'
import { LogController, type FastifyHttpOptions, type FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'
import { rewriteToNormalizedUrl } from './proxy/normalize-path.js'
import { clientErrorHandler } from './lib/client-error.js'
import { redactUrl } from './lib/redact-url.js'
import { isWebSocketUpgrade } from './live/ws-upgrade.js'

/** Largest request body the gateway accepts (413 above). */
export const BODY_LIMIT = 1024 * 1024
/** Largest request head the gateway accepts (431 above). */
export const MAX_HEADER_SIZE = 16 * 1024

/** A client's X-Request-Id is kept only when it is a sane id; anything else is replaced. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function requestIdOf (req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID()
}

/** Paths that pino never writes: credentials, tokens, cookies. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-gateway-assertion"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'password', '*.password',
  'token', '*.token',
  'access', '*.access',
  'refresh', '*.refresh',
  'refresh_token', '*.refresh_token',
  'client_secret', '*.client_secret', 'access_token', '*.access_token',
  'err.command.args', 'err.cause.command.args'
]

/** Fastify's request serializer, with token-shaped parts and sensitive query values of the URL redacted. */
export const LOG_SERIALIZERS = {
  req: (req: { method?: string, url?: string, host?: string, ip?: string, socket?: { remotePort?: number } }) => ({
    method: req.method,
    url: redactUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort
  })
}

function trustHops (hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops
}

export function serverOptions (config: Config, logger: FastifyServerOptions['logger'] = true): FastifyHttpOptions<Server> {
  return {
    // Redaction holds for any logger configuration given as options (tests pass a stream).
    logger: logger === true
      ? { level: config.logLevel, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, serializers: LOG_SERIALIZERS }
      : typeof logger === 'object' && logger !== null && !('child' in logger)
        ? { redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, serializers: LOG_SERIALIZERS, ...logger }
        : logger,
    // A hop count is what Fastify does at run time for a number, as a function its types accept.
    trustProxy: typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
    genReqId: requestIdOf,
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: 256 },
    // Slow-client limits: the head must arrive within 10 s and the whole request within 30 s (408).
    // Node checks them every connectionsCheckingInterval (30 s by default, which made them 18 s
    // and 48 s in practice): every second keeps them within a second of what docs/proxy.md says.
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 5_000,
    // requireHostHeader: Node's own 400 for a missing Host has no security headers; the gateway
    // refuses it itself, as problem+json (src/plugins/app/require-host.ts).
    // Only a GET asking for `websocket` is taken as an upgrade (src/live/ws-upgrade.ts); any
    // other upgrade request (h2c) is served as an ordinary request.
    http: {
      maxHeaderSize: MAX_HEADER_SIZE,
      headersTimeout: 10_000,
      connectionsCheckingInterval: 1_000,
      requireHostHeader: false,
      shouldUpgradeCallback: isWebSocketUpgrade
    },
    rewriteUrl: rewriteToNormalizedUrl,
    clientErrorHandler,
    // Our shutdown guard answers during close, as problem+json (src/plugins/app/shutdown-guard.ts).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } }
  }
}
