/**
 * GET /.well-known/oauth-authorization-server: the gateway's OAuth 2.0 Authorization Server
 * Metadata (RFC 8414), so client libraries and other gateways find its endpoints and what it
 * accepts. `issuer` is JWT_ISSUER (RFC 8414 clients compare it with the URL they started from, so
 * operators who need them set JWT_ISSUER to the gateway's public https URL); endpoint URLs start
 * with PUBLIC_URL, or with the request's own scheme and host when it is unset. Every value says
 * what the gateway really accepts: the grants and client authentication methods of /oauth/token,
 * and the scopes of the route table and of the OAuth endpoints.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { SIGNING_ALG } from '../../tokens/key-ring.js'
import { TOKEN_EXCHANGE_GRANT } from '../../clients/client-schemas.js'
import { PROOF_ALGS } from '../../dpop/proof.js'

const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post']

const MetadataSchema = Type.Object({
  issuer: Type.String(),
  token_endpoint: Type.String(),
  jwks_uri: Type.String(),
  introspection_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  grant_types_supported: Type.Array(Type.String()),
  response_types_supported: Type.Array(Type.String(), { description: 'Empty: the gateway has no authorization endpoint' }),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  introspection_endpoint_auth_methods_supported: Type.Array(Type.String()),
  revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
  introspection_signing_alg_values_supported: Type.Array(Type.String()),
  scopes_supported: Type.Array(Type.String()),
  dpop_signing_alg_values_supported: Type.Array(Type.String(), { description: 'Algorithms accepted in DPoP proofs (RFC 9449 section 5.1)' })
})

const metadataRoute: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jwt, publicUrl } = fastify.config
  fastify.get('/.well-known/oauth-authorization-server', {
    schema: {
      tags: ['oauth'],
      summary: 'OAuth 2.0 Authorization Server Metadata (RFC 8414)',
      description: 'Endpoint URLs start with `PUBLIC_URL` (default: the request\'s scheme and host); `issuer` is `JWT_ISSUER`.',
      response: { 200: MetadataSchema }
    }
  }, async (request) => {
    const base = publicUrl ?? `${request.protocol}://${request.host}`
    return {
      issuer: jwt.issuer,
      token_endpoint: `${base}/oauth/token`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      introspection_endpoint: `${base}/oauth/introspect`,
      revocation_endpoint: `${base}/oauth/revoke`,
      grant_types_supported: ['client_credentials', TOKEN_EXCHANGE_GRANT],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
      introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
      // A user's token is revoked without client authentication ("none").
      revocation_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS, 'none'],
      introspection_signing_alg_values_supported: [SIGNING_ALG],
      scopes_supported: [...fastify.delegation().scopesSupported],
      dpop_signing_alg_values_supported: [...PROOF_ALGS]
    }
  })
}

export default metadataRoute
