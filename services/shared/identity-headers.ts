/**
 * The identity headers the gateway adds (X-User-Id, X-User-Name, X-User-Roles) carry
 * percent-encoded UTF-8 (docs/upstreams.md, "Identity encoding"): decoded here, each role on
 * its own after splitting on `,`. A value that does not decode is left out.
 */
import type { IncomingHttpHeaders } from 'node:http'

export interface IdentityHeaders {
  id?: string
  username?: string
  roles?: string[]
}

function decoded (value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined
  try {
    return decodeURIComponent(value)
  } catch {
    return undefined
  }
}

export function identityFromHeaders (headers: IncomingHttpHeaders): IdentityHeaders {
  const id = decoded(headers['x-user-id'])
  const username = decoded(headers['x-user-name'])
  const rolesHeader = headers['x-user-roles']
  const roles = typeof rolesHeader === 'string' && rolesHeader !== ''
    ? rolesHeader.split(',').map((r) => decoded(r)).filter((r): r is string => r !== undefined)
    : undefined
  return { ...(id !== undefined ? { id } : {}), ...(username !== undefined ? { username } : {}), ...(roles !== undefined ? { roles } : {}) }
}
