/** The OpenAPI document, generated from the route schemas, and its UI at /docs. */
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

export default fp(async (fastify) => {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Auth gateway',
        version: '0.1.0',
        description: 'Login, rotating refresh tokens, sessions and revocation, and a default-deny proxy to internal services. Errors ' +
          'are application/problem+json with a stable `code`.'
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          // Machine clients at POST /oauth/token (docs/machine-clients.md).
          clientBasic: { type: 'http', scheme: 'basic' },
          // The same clients as OAuth 2.0 sees them, with the scopes of the OAuth endpoints
          // (docs/oauth.md); the route table's own scopes are in the metadata document.
          oauthClient: {
            type: 'oauth2',
            flows: {
              clientCredentials: {
                tokenUrl: '/oauth/token',
                scopes: {
                  'tokens:introspect': 'POST /oauth/introspect: token introspection',
                  'token-exchange': 'token exchange at POST /oauth/token: act for a user on one upstream'
                }
              }
            }
          }
        }
      }
    }
  })
  await fastify.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // The UI's own CSP, but never framed (like every other gateway answer).
    transformStaticCSP: (header: string) => header.replace("frame-ancestors 'self'", "frame-ancestors 'none'")
  })
}, { name: 'swagger' })
