/**
 * Client secrets: 256 random bits (base64url), shown once, stored only as a digest.
 *
 * The digest is SHA-256 over the client id and the secret. A slow password hash (argon2, scrypt)
 * exists to make guessing low-entropy human passwords expensive; a 256-bit random secret cannot be
 * guessed or looked up in any table, so a fast hash is as strong and keeps the token endpoint
 * cheap. Binding the client id into the digest means a digest copied onto another record is
 * useless. Comparison is constant-time (crypto.timingSafeEqual on equal-length digests).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** Bytes of randomness in a secret (256 bits). */
export const SECRET_BYTES = 32

export function newClientSecret (): string {
  return randomBytes(SECRET_BYTES).toString('base64url')
}

/** The stored form of a secret: base64url SHA-256 of a domain-separated (client id, secret). */
export function secretDigest (clientId: string, secret: string): string {
  return createHash('sha256').update(`auth-gateway client secret\0${clientId}\0${secret}`).digest('base64url')
}

/** Constant-time check of a presented secret against the stored digest. */
export function secretMatches (clientId: string, presented: string, storedDigest: string): boolean {
  const expected = Buffer.from(storedDigest, 'base64url')
  const actual = Buffer.from(secretDigest(clientId, presented), 'base64url')
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}
