/**
 * Recovery codes: 10 random codes shown once when TOTP is confirmed; the identity backend keeps
 * only their SHA-256 (inside the sealed record) and when each was used.
 */
import { createHash, randomInt } from 'node:crypto'
import { RECOVERY_FACTOR_ID, type RecoveryFactor } from './factors.js'

export const RECOVERY_CODE_COUNT = 10
/** Without 0/o, 1/l/i: read off paper without doubt. 10 characters of 31: about 50 bits each. */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'

export function hashRecoveryCode (code: string): string {
  return createHash('sha256').update(normalizeRecoveryCode(code)).digest('hex')
}

/** Spaces, dashes and case do not matter when a code is typed. */
export function normalizeRecoveryCode (code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, '')
}

/** Ten new codes, and the factor record that keeps their hashes (it replaces any earlier set). */
export function newRecoveryCodes (): { codes: string[], factor: RecoveryFactor } {
  const codes: string[] = []
  for (let i = 0; i < RECOVERY_CODE_COUNT; i++) {
    let raw = ''
    for (let j = 0; j < 10; j++) raw += ALPHABET[randomInt(ALPHABET.length)]
    codes.push(`${raw.slice(0, 5)}-${raw.slice(5)}`)
  }
  const factor: RecoveryFactor = {
    id: RECOVERY_FACTOR_ID,
    type: 'recovery_codes',
    status: 'active',
    createdAt: new Date().toISOString(),
    codes: codes.map((c) => ({ hash: hashRecoveryCode(c), usedAt: null }))
  }
  return { codes, factor }
}
