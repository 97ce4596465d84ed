/**
 * OAuth scopes (RFC 6749 section 3.3): a space-separated list of scope tokens. Scope tokens of
 * this gateway are restricted to a plain alphabet (letters, digits and `:._/-`) so they can travel
 * comma-separated in `X-Client-Scopes` and sit in logs without escaping.
 */

/**
 * The identity backend's scopes: the gateway's assertions carry them when it calls the backend
 * (src/plugins/app/users-client.ts), in the same `scope` claim as a machine client's scopes. No
 * machine client may hold one, or its requests could pass as the gateway's own calls.
 */
export const RESERVED_SCOPES: ReadonlySet<string> = new Set(['credentials:check', 'users:read', 'factors:read', 'factors:write'])

export const SCOPE_PATTERN = '^[A-Za-z0-9:._/-]{1,64}$'
const SCOPE_TOKEN = new RegExp(SCOPE_PATTERN)

export function isScopeToken (value: string): boolean {
  return SCOPE_TOKEN.test(value)
}

/** The tokens of a `scope` parameter or claim; null when one of them is malformed or there are none. */
export function parseScope (value: string): string[] | null {
  const tokens = value.split(' ').filter((s) => s.length > 0)
  if (tokens.length === 0 || !tokens.every(isScopeToken)) return null
  return [...new Set(tokens)]
}

/** The scopes granted for a request: the requested ones when all are the client's, else null (invalid_scope). */
export function narrowScopes (clientScopes: readonly string[], requested: string | undefined): string[] | null {
  if (requested === undefined) return [...clientScopes]
  const tokens = parseScope(requested)
  if (tokens === null || !tokens.every((s) => clientScopes.includes(s))) return null
  return tokens
}
