/**
 * The dashboard's sign-in: the gateway's own auth client (client/, docs/client.md) in cookie
 * mode, bundled into admin.js. The refresh token stays in the HttpOnly cookie and the access token
 * in memory; the client refreshes ahead of expiry, retries once on `token_expired`, and shares the
 * session with the dashboard's other tabs.
 */
import { createAuthClient, type AuthUser, type MfaProof } from '../../client/src/index.js'
export { AuthError, stepUpChallenge } from '../../client/src/index.js'
export type { MfaProof }

export type SignedInUser = AuthUser

const client = createAuthClient({ mode: 'cookie' })

export const login = client.login
/** The second step of a login that answered mfa_required (docs/mfa.md). */
export const verifyMfa = client.verifyMfa
/** A fresh second factor for this session (an admin's reset of a user's factors needs one). */
export const stepUp = client.stepUp
/** Passkeys (docs/mfa.md#passkeys): request options, and a sign-in with a passkey alone. */
export const passkeyOptions = client.passkeyOptions
export const loginWithPasskey = client.loginWithPasskey
export const logout = client.logout
/** fetch with the Bearer token, kept fresh by the client. */
export const authFetch = client.fetch
export const user = client.user
export const onChange = client.onChange
/** Settles once a session from an earlier visit (the refresh cookie) is picked up, or known to be absent. */
export const ready = client.ready
