/** Factor secrets sealed for the identity backend (src/mfa/factor-cipher.ts): AES-256-GCM bound to the user id. */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { FactorCipher } from '../../src/mfa/factor-cipher.js'

t.test('a sealed record opens only for its user, with its key, unchanged', async (t) => {
  const cipher = new FactorCipher(randomBytes(32))
  const sealed = cipher.seal('1001', { secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', lastStep: 7 })
  t.match(sealed, /^v1\.[A-Za-z0-9_-]+$/)
  t.notMatch(sealed, /JBSWY3DP/, 'no plaintext')
  t.same(cipher.open('1001', sealed), { secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', lastStep: 7 })
  t.equal(cipher.open('1002', sealed), undefined, 'copied to another user: does not open')
  t.equal(new FactorCipher(randomBytes(32)).open('1001', sealed), undefined, 'another key: does not open')
  const raw = Buffer.from(sealed.slice(3), 'base64url')
  raw[raw.length - 1]! ^= 1
  t.equal(cipher.open('1001', 'v1.' + raw.toString('base64url')), undefined, 'a changed byte: does not open')
  t.equal(cipher.open('1001', 'plain'), undefined)
  t.not(cipher.seal('1001', { a: 1 }), cipher.seal('1001', { a: 1 }), 'a fresh IV each time')
  t.throws(() => new FactorCipher(randomBytes(16)), /32 bytes/)
})
