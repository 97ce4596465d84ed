/**
 * A user's second factors, opened: the identity backend's records (./factor-record.ts) with their
 * sealed part decrypted (./factor-cipher.ts). Reads and writes go to the backend every time:
 * factors never live only in Redis, so losing Redis never removes one.
 */
import type { FastifyInstance } from 'fastify'
import { gatewayError } from '../errors.js'
import { FactorCipher } from './factor-cipher.js'
import type { FactorRecord, FactorStatus } from './factor-record.js'

export interface TotpFactor {
  id: string
  type: 'totp'
  status: FactorStatus
  createdAt: string
  /** Base32, as the authenticator app has it. */
  secret: string
  /** The last accepted time step: a code of this step or an earlier one is refused. */
  lastStep: number
}

export interface RecoveryCode { hash: string, usedAt: string | null }
export interface RecoveryFactor {
  id: typeof RECOVERY_FACTOR_ID
  type: 'recovery_codes'
  status: 'active'
  createdAt: string
  codes: RecoveryCode[]
}

export interface WebauthnFactor {
  id: string
  type: 'webauthn'
  status: 'active'
  createdAt: string
  /** base64url credential id. */
  credentialId: string
  /** base64url COSE public key. */
  publicKey: string
  counter: number
  transports: string[]
}

export type Factor = TotpFactor | RecoveryFactor | WebauthnFactor
export type FactorMethod = 'totp' | 'webauthn' | 'recovery_code'

/** The one recovery-code record of a user (a new set replaces the old one). */
export const RECOVERY_FACTOR_ID = 'recovery-codes'

/** The sealed part of each type (everything but id, type, status and createdAt). */
type Sealed<F extends Factor> = Omit<F, 'id' | 'type' | 'status' | 'createdAt'>

export class FactorStore {
  readonly #cipher: FactorCipher
  readonly #fastify: FastifyInstance

  constructor (fastify: FastifyInstance, key: Buffer) {
    this.#fastify = fastify
    this.#cipher = new FactorCipher(key)
  }

  /** Every factor of the user that opens with the key; a record that does not open is left out and logged. */
  async list (userId: string, requestId: string): Promise<Factor[]> {
    const records = await this.#fastify.users.listFactors(userId, requestId)
    if (records === null) return []
    const factors: Factor[] = []
    for (const r of records) {
      const data = this.#cipher.open(userId, r.data)
      if (typeof data !== 'object' || data === null) {
        // Not ours, another key, or moved from another user: unusable, and never a way around the factor.
        this.#fastify.log.warn({ user_id: userId, factor_id: r.id }, 'factor record does not open with MFA_ENCRYPTION_KEY')
        throw gatewayError('upstream_unavailable', 'a second-factor record cannot be read')
      }
      factors.push({ ...(data as Sealed<Factor>), id: r.id, type: r.type, status: r.status, createdAt: r.created_at } as Factor)
    }
    return factors
  }

  async save (userId: string, factor: Factor, requestId: string): Promise<void> {
    const { id, type, status, createdAt, ...sealed } = factor
    const record: FactorRecord = { id, type, status, created_at: createdAt, data: this.#cipher.seal(userId, sealed) }
    await this.#fastify.users.putFactor(userId, record, requestId)
  }

  remove (userId: string, factorId: string, requestId: string): Promise<boolean> {
    return this.#fastify.users.deleteFactor(userId, factorId, requestId)
  }
}

/** The methods a user can complete a login with: active factors, recovery codes while one is unused. */
export function methodsOf (factors: readonly Factor[]): FactorMethod[] {
  const methods: FactorMethod[] = []
  if (factors.some((f) => f.type === 'totp' && f.status === 'active')) methods.push('totp')
  if (factors.some((f) => f.type === 'webauthn')) methods.push('webauthn')
  const recovery = factors.find((f): f is RecoveryFactor => f.type === 'recovery_codes')
  if (methods.length > 0 && recovery !== undefined && recovery.codes.some((c) => c.usedAt === null)) methods.push('recovery_code')
  return methods
}

/** A public view of a factor (GET /auth/mfa, the dashboard): never a secret. */
export function describeFactor (f: Factor): {
  id: string,
  type: Factor['type'],
  status: FactorStatus,
  created_at: string,
  remaining?: number
} {
  const base = { id: f.id, type: f.type, status: f.status, created_at: f.createdAt }
  return f.type === 'recovery_codes' ? { ...base, remaining: f.codes.filter((c) => c.usedAt === null).length } : base
}
