/**
 * Reads the public claims of an access token (who it names, which session) for the client's own
 * bookkeeping. The gateway verifies tokens; the client never trusts them for anything else.
 */
import type { AuthUser } from './types.js'

export interface TokenClaims {
  user: AuthUser
  /** The session id (`sid`), or null when the token has none. */
  sid: string | null
  /** The DPoP key the token is bound to (`cnf.jkt`), or null for a bearer token. */
  jkt: string | null
}

function base64UrlDecode (segment: string): string {
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(segment.length / 4) * 4, '=')
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
  return new TextDecoder().decode(bytes)
}

/** The user and session named by an access token, or null when it is not a readable JWT. */
export function readClaims (token: string): TokenClaims | null {
  try {
    const payload = JSON.parse(base64UrlDecode(token.split('.')[1] ?? '')) as Record<string, unknown>
    if (typeof payload.sub !== 'string') return null
    return {
      user: {
        id: payload.sub,
        username: typeof payload.username === 'string' ? payload.username : payload.sub,
        roles: Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : []
      },
      sid: typeof payload.sid === 'string' ? payload.sid : null,
      jkt: typeof (payload.cnf as { jkt?: unknown } | undefined)?.jkt === 'string' ? (payload.cnf as { jkt: string }).jkt : null
    }
  } catch {
    return null
  }
}
