/**
 * `createAuthClient`: the access token in memory only, refreshed before it expires (with jitter, so
 * that tabs and clients do not refresh in lockstep), one refresh and one retry on 401 `token_expired`,
 * and one refresh at a time: in a page (one shared promise) and, in cookie mode, across the tabs of
 * an origin (tab-sync.ts).
 */
import { readClaims } from './token.js'
import { TabSync, type TabMessage } from './tab-sync.js'
import { DpopProver } from './dpop.js'
import {
  AuthError,
  type AuthChangeListener,
  type AuthClient,
  type AuthClientOptions,
  type AuthUser,
  type MfaProof,
  type PasskeyJSON,
  type StepUpChallenge
} from './types.js'

/** Refresh this long before expiry: a quarter of the token's lifetime, at most a minute... */
const LEAD_FRACTION = 0.25
const MAX_LEAD_MS = 60_000
/** ...plus a random part of up to a tenth of the lifetime, at most 10 s. */
const JITTER_FRACTION = 0.1
const MAX_JITTER_MS = 10_000
/** A token this close to expiry is refreshed before a request rather than sent. */
const EXPIRY_SLACK_MS = 1_000
/** A refresh holds the tabs' lock: it gives up after this long rather than stall every tab. */
const REFRESH_TIMEOUT_MS = 15_000
/** After a refresh that failed for a transient reason (network, 429, 5xx), try again this much later at most. */
const MAX_RETRY_MS = 30_000

interface Session {
  access: string
  /** `cnf.jkt` of the access token: the DPoP key it is bound to. */
  jkt: string | null
  user: AuthUser
  sid: string | null
  issuedAt: number
  expiresAt: number
  /** Memory mode only. */
  refresh: string | null
}

interface TokenAnswer { access: string, refresh?: string, expires_in: number }

function isBrowser (): boolean {
  const g = globalThis as { document?: unknown, location?: unknown }
  return typeof g.document === 'object' && g.document !== null && typeof g.location === 'object'
}

function defaultBaseUrl (): string | undefined {
  return (globalThis as { location?: { origin?: string } }).location?.origin
}

/** A timer that does not keep a Node process alive. */
function later (fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const timer = setTimeout(fn, ms)
  ;(timer as { unref?: () => void }).unref?.()
  return timer
}

async function errorCode (response: Response): Promise<string | null> {
  try {
    const body = await response.clone().json() as { code?: unknown }
    return typeof body.code === 'string' ? body.code : null
  } catch {
    return null
  }
}

async function authError (response: Response): Promise<AuthError> {
  let code = 'unexpected_status'
  let message = `the gateway answered ${response.status}`
  let body: { code?: unknown, detail?: unknown, title?: unknown, mfa_token?: unknown, methods?: unknown } = {}
  try {
    body = await response.json() as typeof body
    if (typeof body.code === 'string') code = body.code
    if (typeof body.detail === 'string') message = body.detail
    else if (typeof body.title === 'string') message = body.title
  } catch { /* not JSON */ }
  const error = new AuthError(response.status, code, message)
  if (typeof body.mfa_token === 'string') error.mfaToken = body.mfa_token
  if (Array.isArray(body.methods)) error.methods = body.methods.filter((m): m is string => typeof m === 'string')
  return error
}

/**
 * The step-up challenge of an answer (401 `insufficient_user_authentication`, RFC 9470), read from
 * its `WWW-Authenticate` header, or null: a page shows a second-factor prompt, calls `stepUp` and
 * sends the request again.
 */
export function stepUpChallenge (response: Response): StepUpChallenge | null {
  const header = response.headers.get('www-authenticate') ?? ''
  if (response.status !== 401 || !/error="insufficient_user_authentication"/.test(header)) return null
  const maxAge = /max_age="?(\d+)"?/.exec(header)?.[1]
  const acr = /acr_values="([^"]*)"/.exec(header)?.[1]
  return { ...(maxAge !== undefined ? { maxAge: Number(maxAge) } : {}), ...(acr !== undefined ? { acrValues: acr } : {}) }
}

/**
 * Creates a client of the gateway at `baseUrl`.
 *
 * @param options - `baseUrl` (default: the page's origin; required in Node) and `mode`
 *   (`"cookie"` by default in browsers, `"memory"` elsewhere).
 * @returns the client: `login`, `logout`, `logoutAll`, `fetch`, `user`, `onChange`, `websocket` (docs/client.md),
 *   plus `expiresAt`, `ready` and `close`.
 */
export function createAuthClient (options: AuthClientOptions = {}): AuthClient {
  const rawBase = options.baseUrl ?? defaultBaseUrl()
  if (rawBase === undefined) throw new TypeError('createAuthClient: baseUrl is required outside a browser')
  const baseUrl = rawBase.replace(/\/+$/, '')
  const origin = new URL(baseUrl).origin
  const mode = options.mode ?? (isBrowser() ? 'cookie' : 'memory')
  if (mode !== 'cookie' && mode !== 'memory') throw new TypeError('createAuthClient: mode must be "cookie" or "memory"')
  const cookieMode = mode === 'cookie'
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  // Cookie requests go to the gateway with its cookie even when the page is on another origin (CORS_ORIGINS).
  const credentials: RequestInit['credentials'] = cookieMode ? 'include' : 'same-origin'

  let session: Session | null = null
  let refreshing: Promise<boolean> | null = null
  let timer: ReturnType<typeof setTimeout> | undefined
  let closed = false
  const listeners = new Set<AuthChangeListener>()
  // Sessions this page saw end: a late broadcast of one of their tokens must not sign the tab back in.
  const endedSids = new Set<string>()

  const sync = cookieMode ? new TabSync(options.channelName ?? `auth-client:${baseUrl}`, onTabMessage) : null
  const dpop = options.dpop === true ? new DpopProver(`auth-client:${baseUrl}`) : null

  function authUrl (path: string): string { return baseUrl + path }

  function notify (user: AuthUser | null): void {
    for (const listener of [...listeners]) {
      try { listener(user) } catch { /* a listener's error is its own */ }
    }
  }

  function needsRefresh (now = Date.now()): boolean {
    return session === null || now >= session.expiresAt - leadMs(session)
  }

  function leadMs (s: Session): number {
    return Math.min(MAX_LEAD_MS, (s.expiresAt - s.issuedAt) * LEAD_FRACTION)
  }

  /** Installs a new access token (false for one of a session that ended); tells listeners when the user changed. */
  function setSession (access: string, issuedAt: number, expiresAt: number, refresh: string | null): boolean {
    const claims = readClaims(access)
    if (claims === null) throw new AuthError(0, 'token_invalid', 'the gateway returned an unreadable access token')
    if (claims.sid !== null && endedSids.has(claims.sid)) return false
    const before = session?.user ?? null
    session = { access, jkt: claims.jkt, user: claims.user, sid: claims.sid, issuedAt, expiresAt, refresh }
    schedule()
    if (before === null || before.id !== claims.user.id) notify(claims.user)
    return true
  }

  function endSession (tellTabs: boolean): void {
    clearTimeout(timer)
    const ended = session
    if (ended === null) return
    if (ended.sid !== null) endedSids.add(ended.sid)
    session = null
    if (tellTabs) sync?.post({ type: 'logout', sid: ended.sid })
    notify(null)
  }

  function share (): void {
    if (session !== null) sync?.post({ type: 'token', access: session.access, expiresAt: session.expiresAt, issuedAt: session.issuedAt })
  }

  function onTabMessage (message: TabMessage): void {
    if (closed) return
    if (message.type === 'token') {
      if (message.access === session?.access || message.expiresAt <= Date.now()) return
      setSession(message.access, message.issuedAt, message.expiresAt, null)
    } else if (message.type === 'logout') {
      if (message.sid !== null) endedSids.add(message.sid)
      if (session !== null && (message.sid === null || message.sid === session.sid)) endSession(false)
    } else if (message.type === 'ask') {
      if (!needsRefresh()) share()
    }
  }

  /** Proactive refresh: before expiry, minus a random part so that clients spread out. */
  function schedule (delayMs?: number): void {
    clearTimeout(timer)
    if (session === null || closed) return
    const s = session
    const lifetime = s.expiresAt - s.issuedAt
    const jitter = Math.random() * Math.min(MAX_JITTER_MS, lifetime * JITTER_FRACTION)
    const delay = delayMs ?? Math.max(0, s.expiresAt - leadMs(s) - jitter - Date.now())
    timer = later(() => {
      refresh(s.access).catch(() => {
        // Transient failure: the session is intact; try again while the token still lives.
        const left = session === null ? 0 : session.expiresAt - Date.now()
        if (left > 0) schedule(Math.min(MAX_RETRY_MS, Math.max(500, left / 2)))
      })
    }, delay)
  }

  /**
   * One refresh at a time: callers in this page share the promise; in cookie mode the tabs take
   * turns under a lock, and a tab that finds a token newer than `stale` (handed over by another tab
   * while it waited) uses it instead of refreshing again. Resolves true when a fresh token is in
   * place, false when the gateway refused (the session is over); rejects on transient failures.
   */
  function refresh (stale: string | null): Promise<boolean> {
    refreshing ??= (async () => {
      try {
        if (sync === null) return await callRefresh()
        return await sync.exclusive(async () => {
          if (session !== null && session.access !== stale && !needsRefresh()) return true
          return await callRefresh()
        })
      } finally {
        refreshing = null
      }
    })()
    return refreshing
  }

  async function callRefresh (): Promise<boolean> {
    if (!cookieMode && session?.refresh == null) return false
    const before = session
    const init: RequestInit = cookieMode
      ? { method: 'POST', credentials }
      : { method: 'POST', credentials, headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh: session!.refresh }) }
    if (typeof AbortSignal.timeout === 'function') init.signal = AbortSignal.timeout(REFRESH_TIMEOUT_MS)
    const issuedAt = Date.now()
    const response = await tokenCall(authUrl('/auth/refresh'), init)
    if (response.ok) {
      const body = await response.json() as TokenAnswer
      // A refresh that was answered just before another tab's logout: the session is over.
      if (!setSession(body.access, issuedAt, issuedAt + body.expires_in * 1000, body.refresh ?? null)) return false
      share()
      return true
    }
    if (response.status === 400 || response.status === 401 || response.status === 403) {
      // Refused: this session is over. Unless another tab handed over a token meanwhile.
      if (session !== null && session !== before) return true
      // Only a session that existed ends everywhere: a tab that starts without a cookie tells no one.
      endSession(before !== null)
      return false
    }
    throw await authError(response)
  }

  /** A call to a token endpoint: with DPoP, a proof (and once more with the gateway's new nonce when it asks). */
  async function tokenCall (url: string, init: RequestInit): Promise<Response> {
    if (dpop === null) return await fetchImpl(url, init)
    const attempt = async (): Promise<Response> => {
      const headers = new Headers(init.headers)
      headers.set('dpop', await dpop.proof('POST', url))
      return await fetchImpl(url, { ...init, headers })
    }
    const response = await attempt()
    if (!await dpop.learn(response)) return response
    await response.body?.cancel().catch(() => {})
    return await attempt()
  }

  async function send (request: Request, token: string | null): Promise<Response> {
    if (token === null) return await fetchImpl(request)
    if (dpop === null) {
      request.headers.set('authorization', `Bearer ${token}`)
      return await fetchImpl(request)
    }
    // A bound token goes as `DPoP` with a proof of this very call.
    const spare = request.clone()
    const prove = async (r: Request): Promise<Request> => {
      r.headers.set('authorization', `DPoP ${token}`)
      r.headers.set('dpop', await dpop.proof(r.method, r.url, token))
      return r
    }
    const response = await fetchImpl(await prove(request))
    if (!await dpop.learn(response)) return response
    await response.body?.cancel().catch(() => {})
    return await fetchImpl(await prove(spare))
  }

  async function authFetch (input: string | URL | Request, init?: RequestInit): Promise<Response> {
    await ready
    const url = input instanceof Request ? input.url : new URL(input, baseUrl + '/').href
    const request = new Request(input instanceof Request ? input : url, init)
    // The token goes to the gateway only, never to another origin.
    if (new URL(request.url).origin !== origin) return await fetchImpl(request)

    if (session !== null && Date.now() >= session.expiresAt - EXPIRY_SLACK_MS) {
      await refresh(session.access).catch(() => { /* sent as is; the gateway decides */ })
    }
    const sent = session?.access ?? null
    const retry = sent !== null ? request.clone() : null
    const response = await send(request, sent)
    if (response.status !== 401 || retry === null || await errorCode(response) !== 'token_expired') return response

    // One refresh (shared with any other caller) and one retry.
    let refreshed: boolean
    try { refreshed = await refresh(sent) } catch { return response }
    if (!refreshed || session === null) return response
    await response.body?.cancel().catch(() => {})
    return await send(retry!, session.access)
  }

  /**
   * A login step that ends with tokens (`/auth/login`, `/auth/mfa/verify`): sent with a DPoP proof
   * when the client has a key, and under the tabs' lock, so a refresh of the old cookie cannot land
   * after the new login's.
   */
  async function startSession (path: string, fields: object): Promise<AuthUser> {
    await ready
    const attempt = async (): Promise<AuthUser> => {
      const issuedAt = Date.now()
      const response = await tokenCall(authUrl(path), {
        method: 'POST',
        credentials,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(fields)
      })
      if (!response.ok) throw await authError(response)
      const body = await response.json() as TokenAnswer
      setSession(body.access, issuedAt, issuedAt + body.expires_in * 1000, body.refresh ?? null)
      share()
      return session!.user
    }
    return sync === null ? await attempt() : await sync.exclusive(attempt)
  }

  async function login (username: string, password: string): Promise<AuthUser> {
    return await startSession('/auth/login', { username, password, ...(cookieMode ? { cookie: true } : {}) })
  }

  /** The login's cookie flag carried over at the gateway: the answer has the same shape as a login's. */
  async function verifyMfa (mfaToken: string, proof: MfaProof): Promise<AuthUser> {
    return await startSession('/auth/mfa/verify', { mfa_token: mfaToken, ...proof })
  }

  async function passkeyOptions (opts: { mfaToken?: string } = {}): Promise<PasskeyJSON> {
    await ready
    const body = opts.mfaToken !== undefined ? { mfa_token: opts.mfaToken } : (cookieMode ? { cookie: true } : {})
    const response = await fetchImpl(authUrl('/auth/webauthn/options'), {
      method: 'POST',
      credentials,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body)
    })
    if (!response.ok) throw await authError(response)
    return await response.json() as PasskeyJSON
  }

  /** The cookie flag went with the options (the gateway keeps it with their challenge). */
  async function loginWithPasskey (response: PasskeyJSON): Promise<AuthUser> {
    return await startSession('/auth/webauthn/verify', response)
  }

  async function stepUp (proof: MfaProof): Promise<void> {
    const issuedAt = Date.now()
    const response = await authFetch(
      '/auth/mfa/step-up',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(proof) }
    )
    if (!response.ok) throw await authError(response)
    const body = await response.json() as { access: string, expires_in: number }
    // The same session: its refresh token stays.
    if (session !== null) setSession(body.access, issuedAt, issuedAt + body.expires_in * 1000, session.refresh)
    share()
  }

  // Not under the tabs' lock (its request may need a refresh, which takes the lock): a token of the
  // ended session that another tab refreshed meanwhile is refused by its sid (endedSids).
  async function endAtGateway (path: '/auth/logout' | '/auth/logout-all'): Promise<void> {
    await ready
    if (session === null) return
    try {
      await authFetch(authUrl(path), { method: 'POST', credentials })
    } catch { /* the gateway is unreachable: the session ends here anyway */ }
    endSession(true)
  }

  async function websocket (path: string, protocols?: string | string[]): Promise<WebSocket> {
    await ready
    const Socket = options.WebSocket ?? globalThis.WebSocket
    if (Socket === undefined) throw new TypeError('websocket: no WebSocket here; pass options.WebSocket')
    const response = await authFetch(authUrl('/auth/ws-ticket'), { method: 'POST', credentials })
    if (!response.ok) throw await authError(response)
    const { ticket } = await response.json() as { ticket: string }
    const url = new URL(baseUrl + (path.startsWith('/') ? path : `/${path}`))
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    url.searchParams.set('ticket', ticket)
    const sid = session?.sid ?? null
    const socket = new Socket(url.toString(), protocols)
    socket.addEventListener('close', (event) => {
      // The gateway ended the session's connections: the session is over here too (no retry loop).
      if (event.code === 1008 && (event.reason === 'session_revoked' || event.reason === 'user_inactive') && session !== null
        && session.sid === sid) endSession(true)
    })
    return socket
  }

  // A page reload stays signed in: in cookie mode the session is whatever the cookie holds. Other
  // tabs are asked first; one that has a fresh token hands it over before the lock is ours.
  let ready: Promise<AuthUser | null> = Promise.resolve(null)
  if (sync !== null) {
    sync.post({ type: 'ask' })
    ready = refresh(null).then(() => session?.user ?? null, () => null)
  }

  return {
    login,
    verifyMfa,
    stepUp,
    passkeyOptions,
    loginWithPasskey,
    logout: async () => { await endAtGateway('/auth/logout') },
    logoutAll: async () => { await endAtGateway('/auth/logout-all') },
    fetch: authFetch,
    websocket,
    user: () => session?.user ?? null,
    onChange (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    expiresAt: () => session?.expiresAt ?? null,
    boundTo: () => session?.jkt ?? null,
    async dpopKey () {
      if (dpop === null) return null
      return { thumbprint: await dpop.thumbprint(), extractable: await dpop.extractable() }
    },
    get ready () { return ready },
    close () {
      closed = true
      clearTimeout(timer)
      sync?.close()
    }
  }
}
