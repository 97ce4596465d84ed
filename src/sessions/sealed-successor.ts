/**
 * The successor refresh token a session keeps for grace replays (docs/tokens-and-sessions.md) is stored sealed:
 * AES-256-GCM under a key derived (HKDF-SHA256) from the refresh token that was presented for the
 * rotation. Redis knows only that token's `jti`, never the token itself, so a Redis dump holds no
 * usable token; a grace replay presents the same token again and can open the seal.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

const INFO = 'auth-gateway refresh successor v1'

function keyOf (presented: string, sessionId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', presented, sessionId, INFO, 32))
}

/** base64url(iv || tag || ciphertext). */
export function sealSuccessor (successor: string, presented: string, sessionId: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keyOf(presented, sessionId), iv)
  const ciphertext = Buffer.concat([cipher.update(successor, 'utf8'), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64url')
}

/** The successor, or null when the seal was not made with this presented token (or was altered). */
export function openSuccessor (sealed: string, presented: string, sessionId: string): string | null {
  const raw = Buffer.from(sealed, 'base64url')
  if (raw.length < 29) return null
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(presented, sessionId), raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(12, 28))
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}
