/**
 * Server nonces for DPoP proofs (RFC 9449 section 8), stateless so that every replica accepts
 * the nonce another issued: a nonce names a time slot (one proof window long) and is signed with
 * the gateway's token key, which every replica shares. The nonce of the current slot is handed out;
 * those of the current and the previous slot are accepted. Each slot's nonce is signed once and
 * each nonce presented is verified once per replica.
 */
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose'
import type { KeyRing } from '../tokens/key-ring.js'
import { SIGNING_ALG } from '../tokens/key-ring.js'

const PURPOSE = 'dpop-nonce:'

export class NonceSource {
  readonly #keys: KeyRing
  readonly #slotSeconds: number
  #issued: { slot: number, nonce: Promise<string> } | null = null
  /** Nonces verified lately: nonce -> slot. Small: two slots' worth per signing key. */
  readonly #verified = new Map<string, number>()

  constructor (keys: KeyRing, slotSeconds: number) {
    this.#keys = keys
    this.#slotSeconds = slotSeconds
  }

  #slot (nowMs: number): number {
    return Math.floor(nowMs / 1000 / this.#slotSeconds)
  }

  /** The nonce to hand out now. */
  current (nowMs = Date.now()): Promise<string> {
    const slot = this.#slot(nowMs)
    if (this.#issued?.slot !== slot) {
      const signing = this.#keys.signing
      const nonce = new CompactSign(new TextEncoder().encode(PURPOSE + String(slot)))
        .setProtectedHeader({ alg: SIGNING_ALG, kid: signing.kid })
        .sign(signing.privateKey)
      this.#issued = { slot, nonce }
    }
    return this.#issued.nonce
  }

  /** True for a nonce of this slot or the previous one, issued by any replica. */
  async accepts (nonce: string, nowMs = Date.now()): Promise<boolean> {
    const slot = this.#slot(nowMs)
    const known = this.#verified.get(nonce)
    if (known !== undefined) return known === slot || known === slot - 1
    if (nonce.length > 512) return false
    let payloadSlot: number
    try {
      const { kid } = decodeProtectedHeader(nonce)
      const key = this.#keys.publicKey(kid)
      if (key === undefined) return false
      const { payload } = await compactVerify(nonce, key, { algorithms: [SIGNING_ALG] })
      const text = new TextDecoder().decode(payload)
      if (!text.startsWith(PURPOSE)) return false
      payloadSlot = Number(text.slice(PURPOSE.length))
    } catch {
      return false
    }
    if (payloadSlot !== slot && payloadSlot !== slot - 1) return false
    for (const [n, s] of this.#verified) if (s < slot - 1) this.#verified.delete(n)
    if (this.#verified.size < 64) this.#verified.set(nonce, payloadSlot)
    return true
  }
}
