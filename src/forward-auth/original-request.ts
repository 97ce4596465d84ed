/**
 * The original request a proxy asks about, read only from the headers of that proxy's style. A
 * proxy passes its client's headers on to the auth service, so reading "whichever is present"
 * would let a client send another style's header (an `X-Forwarded-Uri` through nginx) and have a
 * different path authorized than the one the proxy forwards.
 */
import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { gatewayError } from '../errors.js'
import { normalizePath, splitUrl } from '../proxy/normalize-path.js'
import type { ForwardAuthStyle } from './proxy-list.js'

/** Where Envoy's ext_authz (path_prefix) puts the original path. */
export const CHECK_PATH = '/auth/check'

export interface OriginalRequest {
  method: string
  /** Normalized, without query: what the route table and the assertion's `path` use. */
  path: string
}

/** An HTTP method token, kept as sent: a route lists its methods in capitals, so `get` matches none (fail closed). */
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/
/** Scheme and authority of an absolute URL (ingress-nginx's X-Original-URL), not parsed further. */
const SCHEME_AUTHORITY = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/

function single (request: FastifyRequest, name: string): string {
  const value = request.headers[name]
  if (typeof value !== 'string' || value === '') throw gatewayError('invalid_request', `the proxy did not send ${name}`)
  return value
}

/** The method and URI (path and query) as the style carries them. */
function rawOriginal (request: FastifyRequest, style: ForwardAuthStyle): { method: string, uri: string } {
  switch (style) {
    case 'traefik':
    case 'caddy':
      return { method: single(request, 'x-forwarded-method'), uri: single(request, 'x-forwarded-uri') }
    case 'nginx':
      return { method: single(request, 'x-original-method'), uri: single(request, 'x-original-uri') }
    case 'ingress-nginx': {
      const url = single(request, 'x-original-url')
      const authority = SCHEME_AUTHORITY.exec(url)
      if (authority === null) throw gatewayError('invalid_request', 'x-original-url is not an absolute URL')
      const rest = url.slice(authority[0].length)
      return { method: single(request, 'x-original-method'), uri: rest === '' ? '/' : rest }
    }
    case 'envoy': {
      // The request's own URL, already normalized by the server (src/server-options.ts).
      const rest = request.url.slice(CHECK_PATH.length)
      return { method: request.method, uri: rest === '' || rest.startsWith('?') ? '/' + rest : rest }
    }
  }
}

/** The original request; 400 `invalid_request` for what the own proxy would refuse as well. */
export function originalRequest (request: FastifyRequest, style: ForwardAuthStyle): OriginalRequest {
  const { method, uri } = rawOriginal(request, style)
  if (!METHOD.test(method)) throw gatewayError('invalid_request', 'the original method is not acceptable')
  const path = normalizePath(splitUrl(uri.split('#')[0] ?? uri).path)
  if (path === null) throw gatewayError('invalid_request', 'the request path is not acceptable')
  return { method, path }
}

/** The client's address: the last X-Forwarded-For entry as the listed proxy sends it, else the proxy's own. */
export function forwardedClientIp (request: FastifyRequest): string | undefined {
  const xff = request.headers['x-forwarded-for']
  const last = typeof xff === 'string' ? xff.slice(xff.lastIndexOf(',') + 1).trim() : undefined
  return last !== undefined && isIP(last) !== 0 ? last : request.socket.remoteAddress
}
