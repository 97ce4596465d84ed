/**
 * The demo users of docs/identity-backend.md. Only argon2id hashes are stored (m=19 MiB, t=2, p=1, the
 * OWASP minimum); the plaintext demo passwords appear nowhere in code.
 */
export interface StoredUser {
  id: string
  username: string
  roles: string[]
  active: boolean
  passwordHash: string
}

export const DEMO_USERS: readonly StoredUser[] = [
  { id: '1001', username: 'alice', roles: ['user'], active: true,
    passwordHash: '$argon2id$v=19$m=19456,p=1,t=2$iARLr4g8mH5TxiOtxMT0HA$Mt0sZq2Ag2uIZh91iyopWEodVgpS9bWP3ErF1cTdItM' },
  { id: '1002', username: 'bob', roles: ['user'], active: true,
    passwordHash: '$argon2id$v=19$m=19456,p=1,t=2$v3ae9vyR5vLjFeBBsb+nkQ$A2r2LfGLARuS/4RauNiGqpa373ZN0m0jH+5lKet9+3A' },
  { id: '1003', username: 'admin', roles: ['admin'], active: true,
    passwordHash: '$argon2id$v=19$m=19456,p=1,t=2$Ha8WbzA2bs4McxN2pl9K4A$LPLq2DwSAEZ15wAYIApgpjkEriTGL7d0GY90CRQMafU' },
  { id: '1004', username: 'carol', roles: ['user'], active: false,
    passwordHash: '$argon2id$v=19$m=19456,p=1,t=2$Df8Oq5EhQHlH6xZzD/911Q$xJUqWBaW9LqY8mtq85P0m+ehrR+NFzGzQrTSievAu2E' }
]

/** Verified against when the username is unknown, so an unknown user costs the same time. */
export const DUMMY_HASH = '$argon2id$v=19$m=19456,p=1,t=2$ESWgcWUp9ADoLGulUe8i8Q$HwgWTeZjpu8ezPL7AiExj5qBFjioO4qyyPhhCNHhoVI'
