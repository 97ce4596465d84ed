/**
 * Verification of a DPoP proof (RFC 9449 section 4.3): a JWT of type `dpop+jwt`, signed with an
 * asymmetric algorithm by the public key it carries in its `jwk` header, naming the request's
 * method (`htm`) and URL (`htu`), issued within the proof window, with a unique `jti`, and (when a
 * token comes with it) the token's hash (`ath`). jose checks the signature against the embedded
 * key and refuses a private key there; the rest is checked here. Uniqueness of `jti` is the
 * caller's (it needs Redis, see ./proof-jti.ts).
 */
import { createHash } from 'node:crypto'
import {
  EmbeddedJWK,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTHeaderParameters,
  type FlattenedJWSInput
} from 'jose'

/** Asymmetric algorithms accepted in proofs: never `none`, never an HMAC. */
export const PROOF_ALGS = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'EdDSA'] as const
/** Proofs longer than this are refused before any parsing (an RSA key makes the largest). */
const MAX_PROOF_LENGTH = 4096
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
/** `jti` as the proof's author makes it; it ends up hashed inside a Redis key. */
const MAX_JTI_LENGTH = 256

/**
 * A client proves with the same key call after call: the key jose imported from a proof's `jwk`
 * (checked by EmbeddedJWK then: a public key, fit for `alg`) and its thumbprint are kept per exact
 * `jwk` and `alg`, so a proof costs its signature check and not a key import each time.
 */
const KNOWN_KEYS_MAX = 1000
interface KnownKey { key: CryptoKey, jkt?: string }
const knownKeys = new Map<string, KnownKey>()

async function embeddedKey (header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<KnownKey> {
  const id = `${header.alg}:${JSON.stringify(header.jwk)}`
  const known = knownKeys.get(id)
  if (known !== undefined) return known
  const entry: KnownKey = { key: await EmbeddedJWK(header, token) }
  if (knownKeys.size >= KNOWN_KEYS_MAX) knownKeys.clear()
  knownKeys.set(id, entry)
  return entry
}

/** Why a proof is refused: the error code of RFC 9449 section 7.1 and a reason for the logs. */
export class ProofRefusal extends Error {
  override name = 'ProofRefusal'
  constructor (readonly code: 'invalid_dpop_proof' | 'use_dpop_nonce', readonly reason: string) {
    super(reason)
  }
}

export interface ProofExpectation {
  /** The request's method, as sent. */
  method: string
  /** The URL the client addressed, without query and fragment (see ./request-url.ts). */
  url: string
  /** The access token sent with the proof: `ath` must be its hash. */
  accessToken?: string
  /** Seconds `iat` may lie from now, either way. */
  windowSeconds: number
  /** When nonces are demanded: true for a nonce the gateway issued and still accepts. */
  acceptsNonce?: (nonce: string) => Promise<boolean>
  now?: number
}

export interface VerifiedProof {
  /** RFC 7638 thumbprint (SHA-256) of the proof's public key: the `cnf.jkt` it binds to. */
  jkt: string
  jti: string
  iat: number
}

/** The `ath` of an access token: base64url SHA-256 of its ASCII form. */
export function accessTokenHash (token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url')
}

/** The URL without query and fragment, scheme and host lower-cased, default port dropped; null if not an http(s) URL. */
export function normalizedHtu (value: string): string | null {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return null
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null
  return `${url.protocol}//${url.host}${url.pathname}`
}

export async function verifyProof (proof: string, expected: ProofExpectation): Promise<VerifiedProof> {
  if (proof.length > MAX_PROOF_LENGTH || !COMPACT_JWS.test(proof)) throw new ProofRefusal('invalid_dpop_proof', 'malformed proof')
  let header
  try {
    header = decodeProtectedHeader(proof)
  } catch {
    throw new ProofRefusal('invalid_dpop_proof', 'malformed proof')
  }
  // jose checks these too; saying which one failed helps a client author.
  if (header.typ !== 'dpop+jwt') throw new ProofRefusal('invalid_dpop_proof', 'typ must be dpop+jwt')
  if (typeof header.alg !== 'string'
    || !(PROOF_ALGS as readonly string[]).includes(header.alg)) throw new ProofRefusal('invalid_dpop_proof', 'unsupported alg')
  const jwk = header.jwk as JWK | undefined
  if (typeof jwk !== 'object' || jwk === null) throw new ProofRefusal('invalid_dpop_proof', 'no jwk')
  if ('d' in jwk || 'p' in jwk || 'k' in jwk) throw new ProofRefusal('invalid_dpop_proof', 'jwk must be a public key')
  let payload
  let known: KnownKey | undefined
  try {
    ({ payload } = await jwtVerify(proof, async (h, token) => {
      known = await embeddedKey(h, token)
      return known.key
    }, { typ: 'dpop+jwt', algorithms: [...PROOF_ALGS] }))
  } catch (err) {
    throw new ProofRefusal('invalid_dpop_proof', err instanceof joseErrors.JOSEError ? 'bad signature or key' : 'malformed proof')
  }
  const { htm, htu, iat, jti, ath, nonce } = payload as Record<string, unknown>
  if (typeof jti !== 'string' || jti.length === 0
    || jti.length > MAX_JTI_LENGTH) throw new ProofRefusal('invalid_dpop_proof', 'missing or bad jti')
  if (htm !== expected.method) throw new ProofRefusal('invalid_dpop_proof', 'htm does not match the request')
  if (typeof htu !== 'string'
    || normalizedHtu(htu) !== normalizedHtu(expected.url)) throw new ProofRefusal('invalid_dpop_proof', 'htu does not match the request')
  const now = expected.now ?? Math.floor(Date.now() / 1000)
  if (typeof iat !== 'number' || !Number.isInteger(iat)) throw new ProofRefusal('invalid_dpop_proof', 'missing iat')
  if (Math.abs(now - iat) > expected.windowSeconds) throw new ProofRefusal('invalid_dpop_proof', 'iat outside the proof window')
  if (expected.accessToken !== undefined) {
    if (ath !== accessTokenHash(expected.accessToken)) throw new ProofRefusal('invalid_dpop_proof', 'ath does not match the token')
  }
  if (expected.acceptsNonce !== undefined) {
    if (typeof nonce !== 'string'
      || !await expected.acceptsNonce(nonce)) throw new ProofRefusal('use_dpop_nonce', 'the proof must carry the nonce in DPoP-Nonce')
  }
  // The thumbprint once per key, and only of a key that verified a proof.
  if (known === undefined) throw new ProofRefusal('invalid_dpop_proof', 'bad signature or key')
  known.jkt ??= await calculateJwkThumbprint(jwk, 'sha256')
  return { jkt: known.jkt, jti, iat }
}
