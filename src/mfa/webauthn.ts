/**
 * Passkeys (WebAuthn, docs/mfa.md#passkeys) with @simplewebauthn/server: registration options and
 * their verification, assertion options and their verification. The credential (its id, COSE
 * public key, sign counter and transports) is a factor record in the identity backend, sealed like
 * every other (./factors.ts); only the challenges live in Redis (./mfa-state.ts): random, single use,
 * 5 minutes, found again from the response's clientDataJSON.
 */
import type { FastifyRequest } from 'fastify'
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON
} from '@simplewebauthn/server'
import type * as SimpleWebAuthn from '@simplewebauthn/server'
import { gatewayError } from '../errors.js'
import { securityEvent } from '../lib/security-events.js'
import { newId } from '../tokens/token-service.js'
import type { Factor, WebauthnFactor } from './factors.js'
import { CHALLENGE_TTL } from './mfa-state.js'

/**
 * What a challenge was issued for. `register`: a new passkey of `userId`. `assert`: a passkey
 * assertion; with `userId` for that user's second step or step-up only, without it for a sign-in
 * with a passkey alone (then `cookie` is the sign-in's cookie flag).
 */
export type IssuedChallenge =
  | { purpose: 'register', userId: string }
  | { purpose: 'assert', userId?: string, cookie?: boolean }

/** Why an assertion or a registration was refused (events and logs; never shown to the client). */
export type PasskeyRefusal = 'challenge' | 'unknown_credential' | 'verification' | 'counter' | 'duplicate'

let loaded: Promise<typeof SimpleWebAuthn> | undefined
/**
 * @simplewebauthn/server, loaded at the first passkey ceremony rather than at start-up: with its
 * CBOR and ASN.1 parsers it is about 4 MB of heap that a gateway whose users never use passkeys
 * would carry for good (docs/operations.md, "Memory"). Loaded outside the ceremonies' try blocks,
 * so a failure to load is an error, not a refused passkey.
 */
const simpleWebAuthn = (): Promise<typeof SimpleWebAuthn> => (loaded ??= import('@simplewebauthn/server'))

function relyingParty (request: FastifyRequest): { rpId: string, origins: string[] } {
  const { rpId, origins } = request.server.config.mfa
  if (rpId === null) throw gatewayError('not_found', 'passkeys are not configured')
  return { rpId, origins }
}

function state (request: FastifyRequest) {
  const { mfa } = request.server
  if (mfa === null) throw gatewayError('not_found', 'second factors are not configured')
  return mfa
}

export const passkeysOf = (factors: readonly Factor[]): WebauthnFactor[] =>
  factors.filter((f): f is WebauthnFactor => f.type === 'webauthn')

const descriptor = (f: WebauthnFactor): { id: string, transports: string[] } => ({ id: f.credentialId, transports: f.transports })

/** The challenge a response answers, read from its clientDataJSON, or null when there is none. */
export function responseChallenge (response: { response: { clientDataJSON: string } }): string | null {
  try {
    const data = JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString('utf8')) as unknown
    const challenge = typeof data === 'object' && data !== null ? (data as { challenge?: unknown }).challenge : undefined
    return typeof challenge === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(challenge) ? challenge : null
  } catch {
    return null
  }
}

/** Takes (single use) the challenge a response answers: what it was issued for, or null. */
export async function takeChallenge (
  request: FastifyRequest,
  response: { response: { clientDataJSON: string } }
): Promise<{ challenge: string, issued: IssuedChallenge } | null> {
  const challenge = responseChallenge(response)
  if (challenge === null) return null
  const stored = await state(request).state.takeChallenge(challenge)
  const issued = stored === null ? null : issuedChallenge(stored)
  return issued === null ? null : { challenge, issued }
}

function issuedChallenge (v: Record<string, unknown>): IssuedChallenge | null {
  if (v.purpose === 'register' && typeof v.userId === 'string') return { purpose: 'register', userId: v.userId }
  if (v.purpose !== 'assert') return null
  return { purpose: 'assert', ...(typeof v.userId === 'string' ? { userId: v.userId } : {}), cookie: v.cookie === true }
}

/** The user a discoverable credential names (its user handle is our user id), or null. */
export function userHandleOf (response: AuthenticationResponseJSON): string | null {
  const handle = response.response.userHandle
  if (handle === undefined || !/^[A-Za-z0-9_-]{1,100}$/.test(handle)) return null
  const userId = Buffer.from(handle, 'base64url').toString('utf8')
  return /^[\x21-\x7e]{1,64}$/.test(userId) ? userId : null
}

/** PublicKeyCredentialCreationOptionsJSON for a new passkey of the user; its challenge is stored. */
export async function registrationOptions (
  request: FastifyRequest,
  user: { userId: string, username: string },
  factors: readonly Factor[]
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { rpId } = relyingParty(request)
  const options = await (await simpleWebAuthn()).generateRegistrationOptions({
    rpName: request.server.config.jwt.issuer,
    rpID: rpId,
    userName: user.username,
    // The user handle: a sign-in with a passkey alone finds the user from it.
    userID: new Uint8Array(Buffer.from(user.userId, 'utf8')),
    attestationType: 'none',
    excludeCredentials: passkeysOf(factors).map(descriptor),
    // Discoverable (resident) credentials: the passkey can sign in without a username.
    authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
    timeout: CHALLENGE_TTL * 1000
  })
  const issued: IssuedChallenge = { purpose: 'register', userId: user.userId }
  await state(request).state.storeChallenge(options.challenge, issued)
  return options
}

/** Verifies a registration response of the user: the new factor (not yet saved), or why not. */
export async function verifyRegistration (
  request: FastifyRequest,
  userId: string,
  factors: readonly Factor[],
  response: RegistrationResponseJSON
): Promise<WebauthnFactor | PasskeyRefusal> {
  const { rpId, origins } = relyingParty(request)
  const taken = await takeChallenge(request, response)
  if (taken === null || taken.issued.purpose !== 'register' || taken.issued.userId !== userId) return 'challenge'
  const { verifyRegistrationResponse } = await simpleWebAuthn()
  let result
  try {
    result = await verifyRegistrationResponse({
      response,
      expectedChallenge: taken.challenge,
      expectedOrigin: origins,
      expectedRPID: rpId,
      requireUserVerification: false
    })
  } catch (err) {
    request.log.info({ err: { message: (err as Error).message } }, 'passkey registration refused')
    return 'verification'
  }
  if (!result.verified) return 'verification'
  const { credential } = result.registrationInfo
  if (passkeysOf(factors).some((f) => f.credentialId === credential.id)) return 'duplicate'
  return {
    id: newId(),
    type: 'webauthn',
    status: 'active',
    createdAt: new Date().toISOString(),
    credentialId: credential.id,
    publicKey: Buffer.from(credential.publicKey).toString('base64url'),
    counter: credential.counter,
    transports: credential.transports ?? []
  }
}

/**
 * PublicKeyCredentialRequestOptionsJSON; its challenge is stored with what it is for. With
 * `factors` (a known user), allowCredentials lists that user's passkeys.
 */
export async function authenticationOptions (
  request: FastifyRequest,
  issued: Extract<IssuedChallenge, { purpose: 'assert' }>,
  factors?: readonly Factor[]
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const { rpId } = relyingParty(request)
  const options = await (await simpleWebAuthn()).generateAuthenticationOptions({
    rpID: rpId,
    ...(factors !== undefined ? { allowCredentials: passkeysOf(factors).map(descriptor) } : {}),
    // A passkey alone must be two factors in one: the authenticator verifies its user (PIN, biometrics).
    userVerification: issued.userId === undefined ? 'required' : 'preferred',
    timeout: CHALLENGE_TTL * 1000
  })
  await state(request).state.storeChallenge(options.challenge, issued)
  return options
}

/**
 * Verifies an assertion of the user against one of the user's passkeys and a challenge already
 * taken; on success the new sign counter is saved to the backend before it counts. A counter that
 * does not go forward (a cloned authenticator) is refused with the event
 * `passkey_counter_regressed`; it is checked after the signature, so only the real key can raise it.
 */
export async function verifyAssertion (
  request: FastifyRequest,
  userId: string,
  factors: readonly Factor[],
  response: AuthenticationResponseJSON,
  challenge: string,
  requireUserVerification: boolean
): Promise<PasskeyRefusal | null> {
  const { rpId, origins } = relyingParty(request)
  const factor = passkeysOf(factors).find((f) => f.credentialId === response.id && response.rawId === response.id)
  if (factor === undefined) return 'unknown_credential'
  const { verifyAuthenticationResponse } = await simpleWebAuthn()
  let result
  try {
    result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: origins,
      expectedRPID: rpId,
      // The stored counter is compared below, once the signature is known to be right.
      credential: {
        id: factor.credentialId,
        publicKey: new Uint8Array(Buffer.from(factor.publicKey, 'base64url')),
        counter: 0,
        transports: factor.transports
      },
      requireUserVerification
    })
  } catch (err) {
    request.log.info({ err: { message: (err as Error).message }, factor_id: factor.id }, 'passkey assertion refused')
    return 'verification'
  }
  if (!result.verified) return 'verification'
  const { newCounter } = result.authenticationInfo
  if ((newCounter > 0 || factor.counter > 0) && newCounter <= factor.counter) {
    securityEvent(request, 'passkey_counter_regressed',
      { user_id: userId, factor_id: factor.id, counter: newCounter, stored: factor.counter })
    return 'counter'
  }
  if (newCounter !== factor.counter) await state(request).factors.save(userId, { ...factor, counter: newCounter }, request.id)
  return null
}

/**
 * A passkey as the second factor of a login or a step-up: the challenge must be an assertion
 * challenge for this user or for no one in particular (`POST /auth/webauthn/options`).
 */
export async function checkPasskeyAssertion (
  request: FastifyRequest,
  userId: string,
  factors: Factor[],
  response: AuthenticationResponseJSON
): Promise<boolean> {
  if (request.server.config.mfa.rpId === null) return false
  const taken = await takeChallenge(request, response)
  if (taken === null || taken.issued.purpose !== 'assert' || (taken.issued.userId !== undefined && taken.issued.userId !== userId)) {
    request.log.info({ user_id: userId }, 'passkey assertion refused: unknown, used or foreign challenge')
    return false
  }
  return await verifyAssertion(request, userId, factors, response, taken.challenge, false) === null
}
