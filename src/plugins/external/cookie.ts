/** Cookie parsing and setting, for the cookie mode of login and refresh. */
import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'

export default fp(async (fastify) => {
  await fastify.register(cookie)
}, { name: 'cookie' })
