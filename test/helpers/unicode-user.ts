/**
 * A test-only user whose identity is outside Latin-1 (issue 8, item 4): username `李雷` and a role
 * with an emoji and a comma. Served by the users stub through `build(t, { extraUsers: [LI_LEI] })`;
 * the demo users of docs/identity-backend.md stay as they are. The hash is argon2id with the demo
 * users' parameters (hash-wasm: m=19456, t=2, p=1) of LI_LEI_PASSWORD.
 */
import type { StoredUser } from '../../services/users/demo-users.js'

export const LI_LEI_PASSWORD = 'li-lei-password'

export const LI_LEI: StoredUser = {
  id: '2001',
  username: '李雷',
  roles: ['user', 'fan 🚀,café'],
  active: true,
  passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$KpBSo88twnaaqdK1J+4lyw$DLV0XfPHrnwplkqCh3QTGEJ7tKdPP8t4Zs+5bSeZyXM'
}
