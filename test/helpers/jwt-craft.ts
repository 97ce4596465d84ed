/**
 * Hand-made JWS compact tokens for attack tests: every part is built byte by byte, so a test can
 * make a token that is wrong in exactly one way (header, claim, signature or shape).
 */
import { createHmac, generateKeyPairSync, KeyObject, randomBytes, sign as cryptoSign, type webcrypto } from 'node:crypto'

/** base64url of a string, a Buffer, or anything else as JSON. */
export function b64url (value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('base64url')
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

/** The JSON of a base64url part. */
export function decodePart<T = any> (part: string): T {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as T
}

/** `header.payload.signature`, with the signature given as is (base64url string). */
export function assemble (header: unknown, payload: unknown, signature = ''): string {
  return `${b64url(header)}.${b64url(payload)}.${signature}`
}

type AnyKey = KeyObject | webcrypto.CryptoKey

function toKeyObject (key: AnyKey): KeyObject {
  return key instanceof KeyObject ? key : KeyObject.from(key)
}

/** ES256 (raw r||s signature) over `b64(header).b64(payload)`, whatever the header says. */
export function signEs256 (key: AnyKey, header: unknown, payload: unknown): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  const sig = cryptoSign('sha256', Buffer.from(input), { key: toKeyObject(key), dsaEncoding: 'ieee-p1363' })
  return `${input}.${sig.toString('base64url')}`
}

/** HS256 with an arbitrary secret (the classic "HMAC with the public key" confusion). */
export function signHs256 (secret: string | Buffer, header: unknown, payload: unknown): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

/** A fresh P-256 key pair that the gateway has never seen, with its public JWK. */
export function attackerKey (): { privateKey: KeyObject, publicKey: KeyObject, publicJwk: Record<string, string> } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { privateKey, publicKey, publicJwk: publicKey.export({ format: 'jwk' }) as Record<string, string> }
}

export const randomId = (): string => randomBytes(16).toString('base64url')

export const nowSeconds = (): number => Math.floor(Date.now() / 1000)
