/**
 * The dashboard's sign-in, in cookie mode (contract 4.1/4.2): the refresh token stays in the
 * HttpOnly cookie, the access token in this module's memory only. Kept to the surface of the auth
 * client of contract section 12 (login, logout, fetch, user, onChange) so that client can replace
 * this file once it ships.
 */
export interface SignedInUser { id: string, username: string, roles: string[] }

type Listener = (user: SignedInUser | null) => void

let access: string | null = null
let expiresAt = 0
let current: SignedInUser | null = null
let refreshing: Promise<boolean> | null = null
const listeners = new Set<Listener>()

function setSession (token: string | null, expiresIn: number, user: SignedInUser | null): void {
  access = token
  expiresAt = Date.now() + expiresIn * 1000
  const changed = (current?.id ?? null) !== (user?.id ?? null)
  current = user
  if (changed) for (const l of listeners) l(user)
}

/** The claims of the access token (for the user after a refresh); never verified here. */
function claimsOf (token: string): SignedInUser {
  const part = token.split('.')[1] ?? ''
  const json = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as { sub: string, username?: string, roles?: string[] }
  return { id: json.sub, username: json.username ?? json.sub, roles: json.roles ?? [] }
}

export class AuthError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) { super(message) }
}

async function problemOf (res: Response): Promise<AuthError> {
  const body = await res.json().catch(() => ({})) as { code?: string, detail?: string, title?: string }
  return new AuthError(res.status, body.code ?? 'error', body.detail ?? body.title ?? `HTTP ${res.status}`)
}

export async function login (username: string, password: string): Promise<SignedInUser> {
  const res = await globalThis.fetch('/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password, cookie: true }),
    credentials: 'same-origin'
  })
  if (!res.ok) throw await problemOf(res)
  const body = await res.json() as { access: string, expires_in: number, user: SignedInUser }
  setSession(body.access, body.expires_in, body.user)
  return body.user
}

/** One refresh at a time; false (and signed out) when the cookie's session is gone. */
export function refresh (): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const res = await globalThis.fetch('/auth/refresh', { method: 'POST', credentials: 'same-origin' })
      if (!res.ok) { setSession(null, 0, null); return false }
      const body = await res.json() as { access: string, expires_in: number }
      setSession(body.access, body.expires_in, claimsOf(body.access))
      return true
    } catch {
      return false
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

export async function logout (): Promise<void> {
  if (access !== null) {
    await globalThis.fetch('/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${access}` }, credentials: 'same-origin' }).catch(() => undefined)
  }
  setSession(null, 0, null)
}

/** fetch with the Bearer token; refreshes before expiry and once on 401 token_expired. */
export async function authFetch (input: string, init: RequestInit = {}): Promise<Response> {
  if (access !== null && Date.now() > expiresAt - 30_000) await refresh()
  const send = (): Promise<Response> => {
    const headers = new Headers(init.headers)
    if (access !== null) headers.set('authorization', `Bearer ${access}`)
    return globalThis.fetch(input, { ...init, headers, credentials: 'same-origin' })
  }
  const res = await send()
  if (res.status !== 401) return res
  const body = await res.clone().json().catch(() => ({})) as { code?: string }
  if (body.code === 'token_expired' && await refresh()) return send()
  if (body.code === 'token_revoked') setSession(null, 0, null)
  return res
}

export function user (): SignedInUser | null { return current }

export function onChange (listener: Listener): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}
