/**
 * Auth client of the gateway (docs/client.md): login, logout, and a `fetch` that carries the
 * access token and keeps it fresh, in browsers (cookie mode) and on Node 20 (memory mode).
 *
 * @example
 * ```ts
 * import { createAuthClient } from '/client/auth-client.js'
 * const auth = createAuthClient()
 * auth.onChange((user) => render(user))
 * await auth.login('alice', 'alice-password')
 * const orders = await (await auth.fetch('/api/orders')).json()
 * ```
 * @packageDocumentation
 */
export { createAuthClient, stepUpChallenge } from './auth-client.js'
export { AuthError } from './types.js'
export type {
  AuthClient, AuthClientOptions, AuthChangeListener, AuthMode, AuthUser, MfaProof, PasskeyJSON, StepUpChallenge
} from './types.js'
