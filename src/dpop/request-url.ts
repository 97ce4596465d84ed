/**
 * The URL a DPoP proof's `htu` must name: the request as the client addressed the gateway. The
 * scheme and host are the request's own; Fastify takes them from `X-Forwarded-Proto` and
 * `X-Forwarded-Host` only when the peer is a trusted proxy (TRUST_PROXY). Forward authentication
 * names its own target (the asking proxy's client request), see src/routes/forward-auth/check.ts.
 */
import type { FastifyRequest } from 'fastify'

export interface ProofTarget { method: string, url: string }

const targets = new WeakMap<FastifyRequest, ProofTarget>()

/** The method and URL the request's proof must name, when not the request's own. */
export function setProofTarget (request: FastifyRequest, target: ProofTarget): void {
  targets.set(request, target)
}

/** The request's own URL without query, its path as sent (routing sees it normalized: no trailing slash). */
export function ownUrl (request: FastifyRequest): string {
  const path = request.originalUrl.split('?')[0] ?? '/'
  return `${request.protocol}://${request.host}${path}`
}

export function proofTarget (request: FastifyRequest): ProofTarget {
  return targets.get(request) ?? { method: request.method, url: ownUrl(request) }
}

/** Forward authentication: `X-Forwarded-Proto` + `://` + `X-Forwarded-Host` + the original path, as the asking proxy sends them. */
export function forwardedUrl (request: FastifyRequest, path: string): string | undefined {
  const proto = request.headers['x-forwarded-proto']
  const host = request.headers['x-forwarded-host']
  if (typeof proto !== 'string' || typeof host !== 'string' || !/^https?$/i.test(proto.trim()) || host.trim() === '') return undefined
  return `${proto.trim().toLowerCase()}://${host.trim()}${path}`
}
