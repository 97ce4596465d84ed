/**
 * A software WebAuthn authenticator for the Node-side passkey tests: an ES256 key of node:crypto,
 * CBOR by @levischuck/tiny-cbor (the CBOR library @simplewebauthn/server reads with), and the byte
 * layouts of the WebAuthn Level 3 spec (authenticator data, "none" attestation, assertion
 * signature over authData ‖ SHA-256(clientDataJSON)). Every field can be bent for a refusal test.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { encodeCBOR, type CBORType } from '@levischuck/tiny-cbor'

const sha256 = (data: Buffer | string): Buffer => createHash('sha256').update(data).digest()
const b64u = (data: Buffer | Uint8Array): string => Buffer.from(data).toString('base64url')

const UP = 0x01
const UV = 0x04
const AT = 0x40

export interface Ceremony {
  /** The origin the "browser" puts in clientDataJSON. */
  origin?: string
  /** The RP ID whose hash goes into the authenticator data. */
  rpId?: string
  /** The challenge to answer (default: the options'). */
  challenge?: string
  /** The sign counter to report (default: one more than the last). */
  counter?: number
  /** The user handle to report (default: the one registered; null for none). */
  userHandle?: string | null
  /** User verification flag (default true). */
  userVerified?: boolean
}

export class SoftAuthenticator {
  readonly credentialId = randomBytes(16)
  readonly #privateKey: KeyObject
  readonly #cose: Uint8Array
  readonly #origin: string
  readonly #rpId: string
  #userHandle: string | undefined
  counter = 0

  constructor (opts: { origin: string, rpId: string }) {
    this.#origin = opts.origin
    this.#rpId = opts.rpId
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    this.#privateKey = privateKey
    const jwk = publicKey.export({ format: 'jwk' })
    // COSE_Key (RFC 9053): kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
    this.#cose = encodeCBOR(new Map<number, CBORType>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))]
    ]))
  }

  get id (): string { return b64u(this.credentialId) }

  #clientData (type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8')
  }

  #authData (rpId: string, flags: number, counter: number, attested?: Buffer): Buffer {
    const count = Buffer.alloc(4)
    count.writeUInt32BE(counter)
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), count, ...(attested !== undefined ? [attested] : [])])
  }

  /** A RegistrationResponseJSON for PublicKeyCredentialCreationOptionsJSON (fmt "none"). */
  register (options: { challenge: string, user: { id: string } }, bend: Ceremony = {}): Record<string, any> {
    this.#userHandle = options.user.id
    const clientData = this.#clientData('webauthn.create', bend.challenge ?? options.challenge, bend.origin ?? this.#origin)
    const idLength = Buffer.alloc(2)
    idLength.writeUInt16BE(this.credentialId.length)
    const attested = Buffer.concat([Buffer.alloc(16), idLength, this.credentialId, Buffer.from(this.#cose)])
    const flags = UP | AT | (bend.userVerified === false ? 0 : UV)
    const authData = this.#authData(bend.rpId ?? this.#rpId, flags, this.counter, attested)
    const attestationObject = encodeCBOR(new Map<string, CBORType>([
      ['fmt', 'none'],
      ['attStmt', new Map<string, CBORType>()],
      ['authData', new Uint8Array(authData)]
    ]))
    return this.#credential({
      clientDataJSON: b64u(clientData),
      attestationObject: b64u(attestationObject),
      transports: ['internal']
    })
  }

  /** An AuthenticationResponseJSON for PublicKeyCredentialRequestOptionsJSON; the counter moves on unless bent. */
  assert (options: { challenge: string }, bend: Ceremony = {}): Record<string, any> {
    const counter = bend.counter ?? this.counter + 1
    if (counter > this.counter) this.counter = counter
    const clientData = this.#clientData('webauthn.get', bend.challenge ?? options.challenge, bend.origin ?? this.#origin)
    const flags = UP | (bend.userVerified === false ? 0 : UV)
    const authData = this.#authData(bend.rpId ?? this.#rpId, flags, counter)
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientData)]), this.#privateKey)
    const userHandle = bend.userHandle === undefined ? this.#userHandle : bend.userHandle
    return this.#credential({
      clientDataJSON: b64u(clientData),
      authenticatorData: b64u(authData),
      signature: b64u(signature),
      ...(userHandle !== null && userHandle !== undefined ? { userHandle } : {})
    })
  }

  /** The PublicKeyCredential JSON around a ceremony's `response`. */
  #credential (response: Record<string, unknown>): Record<string, any> {
    return { id: this.id, rawId: this.id, type: 'public-key', clientExtensionResults: {}, authenticatorAttachment: 'platform', response }
  }
}
