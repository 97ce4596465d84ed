/**
 * TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps) with otplib: one step of drift either way, and
 * a code of a step at or before the factor's last accepted step refused, so each code works once.
 */
import type * as Otplib from 'otplib'
import type QRCodeModule from 'qrcode'

// Loaded at the first enrolment or code check rather than at start-up (about 1 MB of heap a
// gateway without TOTP users would carry for good; docs/operations.md, "Memory").
let otplib: Promise<typeof Otplib> | undefined
let qrcode: Promise<typeof QRCodeModule> | undefined
const loadOtplib = (): Promise<typeof Otplib> => (otplib ??= import('otplib'))
const loadQrcode = (): Promise<typeof QRCodeModule> => (qrcode ??= import('qrcode').then((m) => m.default))

const PERIOD = 30

export interface NewTotp { secret: string, uri: string, qrSvg: string }

export async function newTotp (issuer: string, account: string): Promise<NewTotp> {
  const [{ generateSecret, generateURI }, QRCode] = await Promise.all([loadOtplib(), loadQrcode()])
  const secret = generateSecret()
  const uri = generateURI({ issuer, label: account, secret })
  // Rendered here, never by a third-party service: the secret does not leave the gateway.
  const qrSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
  return { secret, uri, qrSvg }
}

/** The time step the code belongs to, or null when it is wrong, too old, or of a used step. */
export async function checkTotp (secret: string, code: string, lastStep: number): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null
  const { verify } = await loadOtplib()
  const result = await verify({ secret, token: code, epochTolerance: PERIOD, ...(lastStep > 0 ? { afterTimeStep: lastStep } : {}) })
  return result.valid && 'timeStep' in result ? result.timeStep : null
}
