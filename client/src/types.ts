/** Public types of the auth client (docs/client.md). */

/** Where the refresh token lives. */
export type AuthMode = 'cookie' | 'memory'

/** The signed-in user, as the gateway's access token names them. */
export interface AuthUser {
  id: string
  username: string
  roles: string[]
}

/** Called with the user after a login or a session picked up from another tab, with null when the session ends. */
export type AuthChangeListener = (user: AuthUser | null) => void

export interface AuthClientOptions {
  /**
   * The gateway's origin (and optional path prefix), e.g. `https://gateway.example.com`.
   * Default in a browser: the page's origin. Required in Node.
   */
  baseUrl?: string
  /**
   * `"cookie"` (default in browsers): the refresh token lives only in the gateway's HttpOnly cookie.
   * `"memory"` (default in Node): the refresh token is kept in this object's memory.
   */
  mode?: AuthMode
  /** The fetch implementation to use (default: the global fetch). */
  fetch?: typeof fetch
  /**
   * In cookie mode, tabs of one origin share a session: they coordinate refreshes and logouts on this
   * name (Web Locks and BroadcastChannel). Default: derived from `baseUrl`.
   */
  channelName?: string
  /**
   * Sender-constrained tokens (DPoP, RFC 9449): a non-extractable P-256 key (in IndexedDB, shared by
   * the origin's tabs; in memory in Node) signs a proof for every call, and the gateway binds the
   * tokens to it, so a copied token is useless without the key. Default false.
   */
  dpop?: boolean
  /** The WebSocket constructor `websocket()` uses (default: the global one; Node 20 has none). */
  WebSocket?: typeof WebSocket
}

/** What `createAuthClient` returns. */
export interface AuthClient {
  /** Logs in (a new session) and resolves with the user; rejects with an {@link AuthError} when refused. */
  login (username: string, password: string): Promise<AuthUser>
  /** Ends this session at the gateway (every tab of it) and locally. Never rejects. */
  logout (): Promise<void>
  /** Ends every session of the user at the gateway and this one locally. Never rejects. */
  logoutAll (): Promise<void>
  /**
   * `fetch` with the access token: adds `Authorization: Bearer` for URLs of the gateway (a relative
   * URL is resolved against `baseUrl`), refreshes before expiry, and on a 401 `token_expired` refreshes
   * once and retries once. Any other answer is returned as is, never retried.
   */
  fetch (input: string | URL | Request, init?: RequestInit): Promise<Response>
  /** Completes a login that failed with `mfa_required` (an AuthError with `mfaToken`) with a second factor. */
  verifyMfa (mfaToken: string, proof: MfaProof): Promise<AuthUser>
  /**
   * A second factor for the signed-in session: a fresh access token that satisfies a step-up
   * challenge (see `stepUpChallenge`). Rejects with an AuthError (`mfa_code_invalid`, ...).
   */
  stepUp (proof: MfaProof): Promise<void>
  /**
   * PublicKeyCredentialRequestOptionsJSON from `POST /auth/webauthn/options`, to hand to
   * `navigator.credentials.get` (or `startAuthentication` of @simplewebauthn/browser): for a
   * sign-in with a passkey alone (with this client's cookie flag), for the second step of a login
   * (`{ mfaToken }`: the user's passkeys), or for a step-up.
   */
  passkeyOptions (opts?: { mfaToken?: string }): Promise<PasskeyJSON>
  /**
   * Signs in with a passkey alone: the AuthenticationResponseJSON of options from
   * `passkeyOptions()`. Resolves with the user as `login` does; rejects with an AuthError
   * (`passkey_invalid`, `account_locked`, ...).
   */
  loginWithPasskey (response: PasskeyJSON): Promise<AuthUser>
  /** The signed-in user, or null. */
  user (): AuthUser | null
  /** Subscribes to sign-in and sign-out; returns the function that unsubscribes. */
  onChange (listener: AuthChangeListener): () => void
  /**
   * Opens a WebSocket through the gateway to `path` (e.g. `/api/orders/ws`): takes a single-use
   * ticket (`POST /auth/ws-ticket`) and opens the socket with it, as browsers cannot send headers on
   * a WebSocket. Resolves with the socket as soon as it is created (listen to its `open`, `message`
   * and `close`); rejects with an {@link AuthError} when no ticket is given. No retry: when the
   * gateway closes the socket with 1008 `session_revoked` or `user_inactive`, the session ends here
   * too (`onChange` with null) and the page decides what comes next.
   */
  websocket (path: string, protocols?: string | string[]): Promise<WebSocket>
  /** When the access token expires (ms since the epoch), or null when signed out. */
  expiresAt (): number | null
  /** The DPoP key thumbprint the current access token is bound to (`cnf.jkt`), or null (bearer, or signed out). */
  boundTo (): string | null
  /** With `dpop: true`: the client's key thumbprint, and whether its private key can be exported (never). Null without DPoP. */
  dpopKey (): Promise<{ thumbprint: string, extractable: boolean } | null>
  /**
   * Settles once the client knows whether a session exists: in cookie mode it tries a refresh on
   * start (a page reload stays signed in); in memory mode it is signed out at once.
   */
  readonly ready: Promise<AuthUser | null>
  /** Stops timers and closes the tab channel (the session itself stays; see `logout`). */
  close (): void
}

/** A refused login or an unexpected answer of the gateway. `code` is the gateway's error code. */
export class AuthError extends Error {
  override name = 'AuthError'
  /** `mfa_required`: the token for `verifyMfa` (5 minutes, single use, 5 tries) and the methods that complete the login. */
  mfaToken?: string
  methods?: string[]
  constructor (readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

/** A WebAuthn JSON form (options or a response), passed through as it is. */
export type PasskeyJSON = object

/**
 * A proof of a second factor (docs/mfa.md): a TOTP code, one of the recovery codes, or a passkey's
 * AuthenticationResponseJSON (of options from `passkeyOptions`).
 */
export type MfaProof = { code: string } | { recovery_code: string } | { webauthn: PasskeyJSON }

/**
 * What a 401 `insufficient_user_authentication` (RFC 9470) asks for: a second factor used within
 * `maxAge` seconds, or (`acrValues: 'mfa'`) any second factor in this session.
 */
export interface StepUpChallenge { maxAge?: number, acrValues?: string }
