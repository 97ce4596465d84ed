/**
 * DPoP proofs for the bench, made synchronously (node:crypto) so that autocannon can put a new one
 * on every request: ES256, `htm` GET, `htu` the target URL, `ath` the token's hash.
 */
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto'
import { calculateJwkThumbprint, type JWK } from 'jose'

export interface BenchProver { jkt: string, proof: (token: string) => string }

export async function dpopProver (url: string): Promise<BenchProver> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' })
  const jwk = { kty, crv, x, y } as JWK
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk })).toString('base64url')
  const athOf = new Map<string, string>()
  return {
    jkt: await calculateJwkThumbprint(jwk),
    proof: (token) => {
      let ath = athOf.get(token)
      if (ath === undefined) { ath = createHash('sha256').update(token).digest('base64url'); athOf.set(token, ath) }
      const claims = { htm: 'GET', htu: url, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ath }
      const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
      const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
      return `${input}.${signature.toString('base64url')}`
    }
  }
}
