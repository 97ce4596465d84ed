/**
 * Seals factor secrets before they leave for the identity backend: AES-256-GCM under
 * MFA_ENCRYPTION_KEY, with the user id as associated data, so a record copied to another user's
 * row does not open. Format: `v1.` + base64url(iv ‖ tag ‖ ciphertext).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

const PREFIX = 'v1.'
const IV_BYTES = 12
const TAG_BYTES = 16

export class FactorCipher {
  readonly #key: Buffer

  constructor (key: Buffer) {
    if (key.length !== 32) throw new Error('MFA_ENCRYPTION_KEY must be 32 bytes')
    this.#key = key
  }

  seal (userId: string, value: unknown): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    cipher.setAAD(Buffer.from(userId, 'utf8'))
    const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()])
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')
  }

  /** The value sealed for this user, or undefined when it was not (another key, user or a change). */
  open (userId: string, sealed: string): unknown {
    if (!sealed.startsWith(PREFIX)) return undefined
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64url')
    if (raw.length < IV_BYTES + TAG_BYTES) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES))
      decipher.setAAD(Buffer.from(userId, 'utf8'))
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
      const text = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
      return JSON.parse(text) as unknown
    } catch {
      return undefined
    }
  }
}
