/** A DPoP client key for tests: proofs made with jose, the way a client author would (docs/dpop.md). */
import { createHash, randomUUID } from 'node:crypto'
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'

export interface ProofOptions {
  method: string
  url: string
  /** The access token the proof goes with (`ath`). */
  token?: string
  nonce?: string
  /** Seconds; default now. */
  iat?: number
  jti?: string
  /** Header overrides (typ, alg, jwk) for attacks. */
  header?: Record<string, unknown>
  /** Claims left out (for attacks). */
  omit?: string[]
}

export interface DpopKey {
  jwk: JWK
  jkt: string
  privateKey: CryptoKey
  proof: (opts: ProofOptions) => Promise<string>
}

export const ath = (token: string): string => createHash('sha256').update(token).digest('base64url')

export async function dpopKey (alg: 'ES256' | 'PS256' | 'EdDSA' = 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = await exportJWK(publicKey)
  const jkt = await calculateJwkThumbprint(jwk)
  return {
    jwk,
    jkt,
    privateKey,
    proof: async (o) => {
      const claims: Record<string, unknown> = {
        htm: o.method,
        htu: o.url,
        jti: o.jti ?? randomUUID(),
        iat: o.iat ?? Math.floor(Date.now() / 1000),
        ...(o.token !== undefined ? { ath: ath(o.token) } : {}),
        ...(o.nonce !== undefined ? { nonce: o.nonce } : {})
      }
      for (const name of o.omit ?? []) Reflect.deleteProperty(claims, name)
      return await new SignJWT(claims).setProtectedHeader({ alg, typ: 'dpop+jwt', jwk, ...o.header }).sign(privateKey)
    }
  }
}

/** Headers of a DPoP request: `Authorization: DPoP <token>` and the proof. */
export function dpopHeaders (token: string, proof: string): Record<string, string> {
  return { authorization: `DPoP ${token}`, dpop: proof }
}
