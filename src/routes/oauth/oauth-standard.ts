/**
 * The standard OAuth 2.0 endpoints beside the token endpoint: the metadata document (RFC 8414),
 * token introspection (RFC 7662, 9701) and revocation (RFC 7009). Token exchange (RFC 8693) is a
 * grant of the token endpoint (src/routes/oauth/token-exchange.ts).
 */
import type { FastifyPluginAsync } from 'fastify'
import introspectRoute from './introspect.js'
import metadataRoute from './metadata.js'
import { oauthFormScope } from './oauth-form-scope.js'
import revokeRoute from './revoke.js'

const oauthStandardRoutes: FastifyPluginAsync = async (fastify) => {
  await fastify.register(metadataRoute)
  // Form-encoded, RFC 6749 errors: an encapsulated scope like the token endpoint's.
  await fastify.register(async (form) => {
    await oauthFormScope(form)
    await form.register(introspectRoute)
    await form.register(revokeRoute)
  })
}

export default oauthStandardRoutes
