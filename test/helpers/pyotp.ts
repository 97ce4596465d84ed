/**
 * TOTP codes from Debian's python3-pyotp: a library no one here wrote, so the gateway's TOTP
 * (otplib) is checked against another implementation of RFC 6238, as an authenticator app would be.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { PYTHON } from './django.js'
import { waitFor } from './redis-server.js'
import type { Harness } from '../helper.js'

/** Why pyotp cannot run here, or null. */
export function pyotpMissing (): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import pyotp'], { encoding: 'utf8' })
  return r.status === 0 ? null : 'python3-pyotp is not installed (apt-get install -y python3-pyotp)'
}

/** The code of a base32 secret for the time step `step` (seconds / 30). */
export function totpAt (secret: string, step: number): string {
  const r = spawnSync(
    PYTHON,
    ['-c', 'import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2]) * 30))', secret, String(step)],
    { encoding: 'utf8' }
  )
  if (r.status !== 0) throw new Error(`pyotp failed: ${r.stderr}`)
  return r.stdout.trim()
}

/** pyotp's own otpauth URI parser: the secret and issuer an authenticator app would read from the QR code. */
export function parseUri (uri: string): { secret: string, issuer: string, name: string } {
  const r = spawnSync(
    PYTHON,
    [
      '-c',
      'import pyotp, sys, json; t = pyotp.parse_uri(sys.argv[1]); print(json.dumps({"secret": t.secret, "issuer": t.issuer, "name": ' +
        't.name}))',
      uri
    ],
    { encoding: 'utf8' }
  )
  if (r.status !== 0) throw new Error(`pyotp failed: ${r.stderr}`)
  return JSON.parse(r.stdout) as { secret: string, issuer: string, name: string }
}

export const currentStep = (): number => Math.floor(Date.now() / 30_000)

/**
 * Waits until at least `margin` seconds are left in the current 30-second step, so a test that
 * uses the steps around "now" finishes before the step changes (the gateway accepts one step of drift).
 */
export async function freshStep (margin = 10): Promise<number> {
  await waitFor(() => 30 - (Date.now() / 1000) % 30 >= margin, 'a fresh TOTP step', 35_000)
  return currentStep()
}

/** 32 random bytes, base64: an MFA_ENCRYPTION_KEY. */
export const mfaKey = (): string => randomBytes(32).toString('base64')

/** Enrols TOTP for a user through the API; the confirming code comes from pyotp at `step`. */
export async function enrolTotp (
  h: Harness,
  access: string,
  step: number
): Promise<{ secret: string, recoveryCodes: string[], factorId: string }> {
  const started = await h.request('POST', '/auth/mfa/totp', { token: access })
  if (started.status !== 200) throw new Error(`enrolment: ${started.status} ${started.text}`)
  const confirmed = await h.request(
    'POST',
    '/auth/mfa/totp/confirm',
    { token: access, body: { factor_id: started.body.factor_id, code: totpAt(started.body.secret, step) } }
  )
  if (confirmed.status !== 200) throw new Error(`confirmation: ${confirmed.status} ${confirmed.text}`)
  return { secret: started.body.secret, recoveryCodes: confirmed.body.recovery_codes, factorId: started.body.factor_id }
}
