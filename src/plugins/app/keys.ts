/** Loads the signing keys: JWT_KEYS_FILE, or an ephemeral key outside production (with a warning). */
import fp from 'fastify-plugin'
import { KeyRing } from '../../tokens/key-ring.js'

declare module 'fastify' {
  interface FastifyInstance {
    keys: KeyRing
  }
}

export default fp<{ keyRing?: KeyRing }>(async (fastify, opts) => {
  let keys = opts.keyRing
  if (keys === undefined) {
    const file = fastify.config.jwt.keysFile
    if (file !== undefined) {
      keys = await KeyRing.fromFile(file)
    } else {
      keys = await KeyRing.ephemeral()
      fastify.log.warn('JWT_KEYS_FILE is not set: using an ephemeral signing key; every token dies with this process')
    }
  }
  fastify.decorate('keys', keys)
}, { name: 'keys', dependencies: ['config'] })
