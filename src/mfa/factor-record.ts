/**
 * A second-factor record as the identity backend keeps it (docs/identity-backend.md): the backend
 * sees the id, the type, the status and when it was created; everything secret is in `data`,
 * sealed by the gateway (./factor-cipher.ts), so the backend stores only ciphertext.
 */

export const FACTOR_TYPES = ['totp', 'webauthn', 'recovery_codes'] as const
export type FactorType = typeof FACTOR_TYPES[number]
export type FactorStatus = 'pending' | 'active'

export interface FactorRecord {
  id: string
  type: FactorType
  status: FactorStatus
  created_at: string
  /** Sealed by the gateway; opaque to the backend. */
  data: string
}

/** Factor ids go into URLs and Redis keys: a safe alphabet. */
export const FACTOR_ID = /^[A-Za-z0-9_-]{1,64}$/
/** A sealed record is small; anything larger is not one of ours. */
export const MAX_FACTOR_DATA = 16 * 1024

function isRecord (v: unknown): v is FactorRecord {
  if (typeof v !== 'object' || v === null) return false
  const r = v as Record<string, unknown>
  return typeof r.id === 'string' && FACTOR_ID.test(r.id) &&
    typeof r.type === 'string' && (FACTOR_TYPES as readonly string[]).includes(r.type) &&
    (r.status === 'pending' || r.status === 'active') &&
    typeof r.created_at === 'string' &&
    typeof r.data === 'string' && r.data.length <= MAX_FACTOR_DATA
}

/** The records of a `GET .../factors` body `{"factors": [...]}`, or undefined when it is not one. */
export function factorRecords (body: unknown): FactorRecord[] | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const list = (body as { factors?: unknown }).factors
  if (!Array.isArray(list) || !list.every(isRecord)) return undefined
  return list.map((r: FactorRecord) => ({ id: r.id, type: r.type, status: r.status, created_at: r.created_at, data: r.data }))
}
