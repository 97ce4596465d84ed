/**
 * Sender-constrained tokens (docs/dpop.md): DPoP proofs at the token endpoints (what they issue is
 * bound to the proof's key) and on every protected request (a bound token only with a proof of
 * that key), server nonces when DPOP_NONCE is on, and the fingerprint cookie of cookie-mode
 * sessions. A protected request's proof `jti` is claimed in the request's one Redis script (see
 * src/dpop/proof-jti.ts); at a token endpoint it is one command on the key's own hash tag.
 */
import { admittedByTicket } from '../../live/ws-upgrade.js'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { gatewayError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { orStoreUnavailable } from '../../lib/store-unavailable.js'
import { proofError } from '../../dpop/dpop-errors.js'
import { fingerprintMatches } from '../../dpop/fingerprint.js'
import { NonceSource } from '../../dpop/nonce.js'
import { ProofRefusal, verifyProof, type VerifiedProof } from '../../dpop/proof.js'
import { proofJtiKey, type ProofJtiClaim } from '../../dpop/proof-jti.js'
import { ownUrl, proofTarget } from '../../dpop/request-url.js'
import { isClientClaims, type AccessClaims, type ClientAccessClaims } from '../../tokens/claims.js'

/** How an access token came: `Authorization: Bearer <token>` or `Authorization: DPoP <token>`. */
export interface PresentedAccess { scheme: 'Bearer' | 'DPoP', token: string }

const PRESENTED = /^(?:Bearer|DPoP) +[^\s]+ *$/i
const SPACE = 32

/** The token of an `Authorization: Bearer|DPoP <token>` header, with its scheme; undefined for anything else. */
export function presentedAccess (request: FastifyRequest): PresentedAccess | undefined {
  const header = request.headers.authorization
  // Tested, then cut by hand: no match array and no scheme string per request.
  if (typeof header !== 'string' || !PRESENTED.test(header)) return undefined
  const dpop = header.charCodeAt(0) === 68 || header.charCodeAt(0) === 100 // D or d
  let start = dpop ? 4 : 6
  while (header.charCodeAt(start) === SPACE) start++
  let end = header.length
  while (header.charCodeAt(end - 1) === SPACE) end--
  return { scheme: dpop ? 'DPoP' : 'Bearer', token: header.slice(start, end) }
}

export interface DpopService {
  /**
   * The sender constraints of a verified access token on a protected request: a bound token only
   * as `DPoP` with a valid proof of its key, a fingerprinted one only with its cookie. Returns the
   * proof's `jti` to claim in the request's Redis script, a promise of it, as a proof is verified;
   * for an unbound token undefined, at once (the common path takes no promise).
   * Throws the 401 to answer.
   */
  checkSender: (
    request: FastifyRequest,
    presented: PresentedAccess,
    claims: AccessClaims | ClientAccessClaims
  ) => Promise<ProofJtiClaim> | undefined
  /** The refusal of a proof whose jti the request's script found already used. */
  replayed: (request: FastifyRequest, subject: string) => Error
  /**
   * At a token endpoint: the thumbprint of the key of the request's proof (its jti claimed), or
   * undefined without a proof when none is `required`. Throws the 400 to answer.
   */
  tokenProof: (request: FastifyRequest, opts: { required: boolean }) => Promise<string | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    dpop: DpopService
  }
}

/** The request's `DPoP` header; a repeated header (joined by Node) fails verification as malformed. */
function proofHeader (request: FastifyRequest): string | undefined {
  const value = request.headers.dpop
  return typeof value === 'string' ? value : undefined
}

export default fp(async (fastify) => {
  const { proofWindow, nonce: nonceOn } = fastify.config.dpop
  const cookieSecure = fastify.config.cookieSecure
  const nonces = nonceOn ? new NonceSource(fastify.keys, proofWindow) : undefined
  const acceptsNonce = nonces === undefined ? undefined : (n: string) => nonces.accepts(n)

  // Every answer to a request with a proof names the nonce to use next (RFC 9449 section 8).
  if (nonces !== undefined) {
    fastify.addHook('onSend', async (request, reply) => {
      if (request.headers.dpop !== undefined
        || reply.getHeader('dpop-nonce') !== undefined) reply.header('dpop-nonce', await nonces.current())
    })
  }

  async function refusal (
    request: FastifyRequest,
    err: unknown,
    at: 'resource' | 'token',
    fields: Record<string, unknown>
  ): Promise<Error> {
    if (!(err instanceof ProofRefusal)) return err as Error
    securityEvent(request, 'dpop_proof_rejected', { ...fields, reason: err.reason })
    return proofError(err.code, err.reason, at, err.code === 'use_dpop_nonce' && nonces !== undefined ? await nonces.current() : undefined)
  }

  async function verified (
    request: FastifyRequest,
    proof: string,
    at: 'resource' | 'token',
    accessToken: string | undefined,
    fields: Record<string, unknown>
  ): Promise<VerifiedProof> {
    const target = at === 'resource' ? proofTarget(request) : { method: request.method, url: ownUrl(request) }
    try {
      return await verifyProof(proof, {
        method: target.method,
        url: target.url,
        windowSeconds: proofWindow,
        ...(accessToken !== undefined ? { accessToken } : {}),
        ...(acceptsNonce !== undefined ? { acceptsNonce } : {})
      })
    } catch (err) {
      throw await refusal(request, err, at, fields)
    }
  }

  /** A bound token's proof: signed by the token's key (`jkt`), for this request; its jti to claim under `owner`. */
  async function proofOfKey (
    request: FastifyRequest,
    presented: PresentedAccess,
    jkt: string,
    owner: string,
    subject: Record<string, unknown>
  ): Promise<ProofJtiClaim> {
    const proof = proofHeader(request)
    if (proof === undefined) throw await refusal(request, new ProofRefusal('invalid_dpop_proof', 'no DPoP proof'), 'resource', subject)
    const checked = await verified(request, proof, 'resource', presented.token, subject)
    if (checked.jkt !== jkt) throw await refusal(
      request,
      new ProofRefusal('invalid_dpop_proof', 'the proof is not signed by the token\'s key'),
      'resource',
      subject
    )
    return proofJtiKey(owner, checked.jti, proofWindow)
  }

  const service: DpopService = {
    checkSender (request, presented, claims) {
      const client = isClientClaims(claims)
      const subject = client ? { client_id: claims.client_id } : { user_id: claims.sub }
      if (!client && claims.fgp !== undefined && !fingerprintMatches(request, cookieSecure, claims.fgp)) {
        securityEvent(request, 'token_unbound_use', { ...subject, reason: 'fingerprint_missing' })
        throw gatewayError('token_invalid', 'the token is valid only with its fingerprint cookie')
      }
      const jkt = claims.cnf?.jkt
      // A WebSocket handshake with a ticket: the proof was shown when the ticket was issued.
      if (jkt !== undefined && admittedByTicket(request)) return undefined
      if (jkt === undefined) {
        if (presented.scheme === 'DPoP') throw gatewayError('token_invalid', 'the token is not DPoP-bound: send it as Bearer')
        return undefined
      }
      if (presented.scheme !== 'DPoP') {
        securityEvent(request, 'token_unbound_use', { ...subject, reason: 'bearer_scheme' })
        throw gatewayError('token_invalid', 'a DPoP-bound token is accepted only with the DPoP scheme and a proof')
      }
      return proofOfKey(request, presented, jkt, client ? `c:${claims.client_id}` : `u:${claims.sub}`, subject)
    },

    replayed (request, subject) {
      securityEvent(request, 'dpop_proof_rejected', { subject, reason: 'proof replayed' })
      return proofError('invalid_dpop_proof', 'proof replayed', 'resource')
    },

    async tokenProof (request, opts) {
      const proof = proofHeader(request)
      if (proof === undefined) {
        if (!opts.required) return undefined
        throw await refusal(request, new ProofRefusal('invalid_dpop_proof', 'a DPoP proof is required'), 'token', {})
      }
      const checked = await verified(request, proof, 'token', undefined, {})
      const claim = proofJtiKey(`dpop:${checked.jkt}`, checked.jti, proofWindow)
      const fresh = await orStoreUnavailable(fastify.redis.set(claim.key, '1', 'PX', claim.ttlMs, 'NX'))
      if (fresh === null) throw await refusal(request, new ProofRefusal('invalid_dpop_proof', 'proof replayed'), 'token', {})
      return checked.jkt
    }
  }
  fastify.decorate('dpop', service)
}, { name: 'dpop', dependencies: ['config', 'keys', 'redis-store'] })
