/**
 * The gateway's signing keys: a private JWKS whose first key signs and whose every key verifies.
 * Keys are looked up by `kid` only; nothing from a token's header (jwk, jku, x5u) is ever trusted.
 */
import { readFile } from 'node:fs/promises'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose'

export const SIGNING_ALG = 'ES256'

/** A private EC P-256 key as stored in the keys file. */
export interface PrivateJwk extends JWK {
  kty: 'EC'
  crv: 'P-256'
  kid: string
  d: string
}

export interface PublicJwk { kty: 'EC', crv: 'P-256', x: string, y: string, kid: string, alg: typeof SIGNING_ALG, use: 'sig' }

interface LoadedKey { kid: string, privateKey: CryptoKey, publicKey: CryptoKey, publicJwk: PublicJwk }

export class KeyFileError extends Error {
  override name = 'KeyFileError'
}

function assertPrivateJwk (value: unknown, index: number): asserts value is PrivateJwk {
  const k = value as Record<string, unknown> | null
  const ok = typeof k === 'object' && k !== null && k.kty === 'EC' && k.crv === 'P-256' &&
    typeof k.kid === 'string' && k.kid.length > 0 && typeof k.d === 'string' &&
    typeof k.x === 'string' && typeof k.y === 'string' && (k.alg === undefined || k.alg === SIGNING_ALG) &&
    (k.use === undefined || k.use === 'sig')
  if (!ok) throw new KeyFileError(`key ${index} is not an ES256 (EC P-256) private JWK with a kid`)
}

/** Reads and checks a private JWKS document. */
export function parsePrivateJwks (text: string): PrivateJwk[] {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw new KeyFileError('is not JSON')
  }
  const keys = (doc as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length === 0) throw new KeyFileError('has no "keys" array with at least one key')
  keys.forEach(assertPrivateJwk)
  const kids = new Set(keys.map((k) => k.kid))
  if (kids.size !== keys.length) throw new KeyFileError('has two keys with the same kid')
  return keys
}

/** Makes a new private ES256 JWK whose kid is its RFC 7638 thumbprint. */
export async function generatePrivateJwk (): Promise<PrivateJwk> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true })
  const jwk = await exportJWK(privateKey)
  const kid = await calculateJwkThumbprint(jwk)
  return { ...jwk, kty: 'EC', crv: 'P-256', d: jwk.d as string, kid, alg: SIGNING_ALG, use: 'sig' }
}

export class KeyRing {
  readonly #byKid: Map<string, LoadedKey>
  readonly signing: LoadedKey
  /** The public JWKS served at /.well-known/jwks.json. */
  readonly publicJwks: { keys: PublicJwk[] }
  /** True when the keys were generated at start-up and die with the process. */
  readonly ephemeral: boolean

  private constructor (keys: LoadedKey[], ephemeral: boolean) {
    this.#byKid = new Map(keys.map((k) => [k.kid, k]))
    this.signing = keys[0] as LoadedKey
    this.publicJwks = { keys: keys.map((k) => k.publicJwk) }
    this.ephemeral = ephemeral
  }

  static async fromJwks (jwks: PrivateJwk[], ephemeral = false): Promise<KeyRing> {
    const loaded = await Promise.all(jwks.map(async (jwk, index) => {
      const { d: _d, ...pub } = jwk
      const publicJwk: PublicJwk = { kty: 'EC', crv: 'P-256', x: pub.x as string, y: pub.y as string, kid: jwk.kid, alg: SIGNING_ALG,
        use: 'sig' }
      try {
        return {
          kid: jwk.kid,
          privateKey: await importJWK({ ...jwk, alg: SIGNING_ALG }, SIGNING_ALG) as CryptoKey,
          publicKey: await importJWK(publicJwk, SIGNING_ALG) as CryptoKey,
          publicJwk
        }
      } catch (err) {
        // A well-formed but broken key (a point off the curve, a d that does not match x/y, key_ops).
        throw new KeyFileError(`key ${index} (${jwk.kid}) cannot be imported: ${(err as Error).message}`)
      }
    }))
    return new KeyRing(loaded, ephemeral)
  }

  static async fromFile (path: string): Promise<KeyRing> {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      throw new KeyFileError(`cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    return KeyRing.fromJwks(parsePrivateJwks(text))
  }

  static async ephemeral (): Promise<KeyRing> {
    return KeyRing.fromJwks([await generatePrivateJwk()], true)
  }

  /** The verification key of a kid, or undefined. A Map lookup: a path-like kid simply misses. */
  publicKey (kid: unknown): CryptoKey | undefined {
    return typeof kid === 'string' ? this.#byKid.get(kid)?.publicKey : undefined
  }
}
