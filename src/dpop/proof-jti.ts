/**
 * Each proof's `jti` is accepted once, by any replica, for as long as its `iat` can pass the proof
 * window (`iat` may lie a window either way: twice the window). On protected requests the claim is a
 * step of its own at the start of the request's one script (session check or client check), on a
 * key of the caller's hash tag, so a DPoP request still costs one Redis round trip.
 */
import { createHash } from 'node:crypto'

/** A proof's `jti` to claim: the key (on the caller's hash tag) and how long it lives. */
export interface ProofJtiClaim { key: string, ttlMs: number }

/**
 * Runs before a script's own body: takes the last of KEYS (the jti key) and of ARGV (its TTL in
 * ms), claims the key, and answers {-1} when some replica already did. The rest of the script sees
 * its KEYS and ARGV as without this step.
 */
const claimProofJtiLua = `
local proof_jti_key = table.remove(KEYS)
local proof_jti_ttl = table.remove(ARGV)
if not redis.call('SET', proof_jti_key, '1', 'NX', 'PX', proof_jti_ttl) then return {-1} end
`

/** The script `lua` with the jti claim as its first step. */
export function withProofJti (lua: string): string {
  return claimProofJtiLua + lua
}

/** What a script with the claim answers when the proof was seen before. */
export const PROOF_REPLAYED = -1

/** The key of a proof's `jti` on `hashTag` (e.g. `u:<user id>`); the jti is hashed so any string fits. */
export function proofJtiKey (hashTag: string, jti: string, windowSeconds: number): ProofJtiClaim {
  const digest = createHash('sha256').update(jti).digest('base64url').slice(0, 22)
  return { key: `gw:{${hashTag}}:dpop:${digest}`, ttlMs: windowSeconds * 2000 }
}
