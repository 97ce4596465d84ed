/**
 * The gateway as a Fastify plugin, in layers: external plugins (security headers, CORS, cookies,
 * OpenAPI), then app plugins (config, Redis, keys, tokens, sessions, users client, authentication),
 * then routes. `buildGateway` makes the Fastify instance around it for server.ts and the tests.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import { serverOptions } from './server-options.js'
import type { KeyRing } from './tokens/key-ring.js'
import type { ProxyRoute } from './proxy/route-table.js'
import { RoutesFileError } from './proxy/routes-file.js'
import { stepUpWithoutFactors } from './mfa/step-up.js'

import helmet from './plugins/external/helmet.js'
import cors from './plugins/external/cors.js'
import cookie from './plugins/external/cookie.js'
import swagger from './plugins/external/swagger.js'
import requireHost from './plugins/app/require-host.js'

import configPlugin from './plugins/app/config.js'
import errorHandler, { notFoundHandler } from './plugins/app/error-handler.js'
import rateLimit from './plugins/external/rate-limit.js'
import loginLockout from './plugins/app/login-lockout.js'
import metrics from './plugins/app/metrics.js'
import shutdownGuard from './plugins/app/shutdown-guard.js'
import redisStore from './plugins/app/redis-store.js'
import keys from './plugins/app/keys.js'
import tokenService from './plugins/app/token-service.js'
import sessionStore from './plugins/app/session-store.js'
import usersClient from './plugins/app/users-client.js'
import userState from './plugins/app/user-state.js'
import authenticate from './plugins/app/authenticate.js'
import audit from './plugins/app/audit.js'
import clientStore from './plugins/app/client-store.js'
import clientAuth from './plugins/app/client-auth.js'
import delegation from './plugins/app/delegation.js'
import dpop from './plugins/app/dpop.js'
import mfa from './plugins/app/mfa.js'
import mfaRoutes from './routes/auth/mfa.js'
import webauthnRoutes from './routes/auth/webauthn.js'
import userFactorRoutes from './routes/admin/user-factors.js'
import liveConnections from './plugins/app/live-connections.js'

import healthRoutes from './routes/health/health.js'
import loginRoute from './routes/auth/login.js'
import refreshRoute from './routes/auth/refresh.js'
import verifyRoute from './routes/auth/verify.js'
import sessionRoutes from './routes/auth/sessions.js'
import wsTicketRoute from './routes/auth/ws-ticket.js'
import adminSessionRoutes from './routes/admin/user-sessions.js'
import proxyRoutes from './routes/proxy/proxy-routes.js'
import simplejwtRoutes from './routes/simplejwt/simplejwt-routes.js'
import clientFiles from './routes/client/client-files.js'
import auditEventRoutes from './routes/admin/audit-events.js'
import blockRoutes from './routes/admin/blocks.js'
import userSessionListRoutes from './routes/admin/user-session-list.js'
import dashboard from './routes/admin/dashboard.js'
import adminClientRoutes from './routes/admin/clients.js'
import eventCountRoutes from './routes/admin/event-counts.js'
import userLookupRoutes from './routes/admin/user-lookup.js'
import oauthTokenRoute from './routes/oauth/token.js'
import oauthStandardRoutes from './routes/oauth/oauth-standard.js'
import forwardAuthRoutes from './routes/forward-auth/check.js'

export interface AppOptions {
  config: Config
  /** Use these keys instead of JWT_KEYS_FILE (tests). */
  keyRing?: KeyRing
  /** Use this proxy route table instead of the contract's (tests). */
  routes?: readonly ProxyRoute[]
}

const app: FastifyPluginAsync<AppOptions> = async (fastify, opts) => {
  fastify.setValidatorCompiler(TypeBoxValidatorCompiler)

  await fastify.register(configPlugin, { config: opts.config })
  await fastify.register(errorHandler)
  await fastify.register(shutdownGuard)

  // External plugins
  await fastify.register(helmet)
  await fastify.register(cors)
  await fastify.register(cookie)
  await fastify.register(swagger)
  await fastify.register(requireHost)

  // App plugins
  await fastify.register(redisStore)
  await fastify.register(metrics)
  await fastify.register(rateLimit)
  await fastify.register(loginLockout)
  await fastify.register(audit)
  await fastify.register(keys, opts.keyRing !== undefined ? { keyRing: opts.keyRing } : {})
  await fastify.register(tokenService)
  await fastify.register(sessionStore)
  await fastify.register(usersClient)
  await fastify.register(mfa)
  await fastify.register(userState)
  await fastify.register(clientStore)
  await fastify.register(dpop)
  await fastify.register(clientAuth)
  await fastify.register(authenticate)
  await fastify.register(delegation)
  await fastify.register(liveConnections)

  // Routes
  await fastify.register(healthRoutes)
  await fastify.register(async (auth) => {
    // Answers about credentials and sessions are never cached.
    auth.addHook('onRequest', (_request, reply, done) => { reply.header('cache-control', 'no-store'); done() })
    await auth.register(loginRoute)
    await auth.register(refreshRoute)
    await auth.register(verifyRoute)
    await auth.register(sessionRoutes)
    await auth.register(wsTicketRoute)
    await auth.register(adminSessionRoutes)
    await auth.register(auditEventRoutes)
    await auth.register(blockRoutes)
    await auth.register(userSessionListRoutes)
    await auth.register(adminClientRoutes)
    await auth.register(eventCountRoutes)
    await auth.register(userLookupRoutes)
    // Second factors exist only with MFA_ENCRYPTION_KEY (docs/mfa.md).
    if (opts.config.mfa.key !== null) {
      await auth.register(mfaRoutes)
      await auth.register(userFactorRoutes)
      // Passkeys with WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS.
      if (opts.config.mfa.rpId !== null) await auth.register(webauthnRoutes)
    }
  })
  await fastify.register(oauthTokenRoute)
  await fastify.register(oauthStandardRoutes)
  // The simplejwt-compatible API (docs/simplejwt-api.md): the gateway's own routes (never forwarded); SIMPLEJWT_COMPAT=false removes them.
  if (opts.config.simplejwt.enabled) await fastify.register(simplejwtRoutes)
  await fastify.register(dashboard)
  // One table for the own proxy and forward authentication: both decide the same way.
  await fastify.register(proxyRoutes, opts.routes !== undefined ? { routes: opts.routes } : {})
  refuseStepUpWithoutFactors(fastify, opts.config)
  // Forward authentication decides on the proxy's route table (after it is registered).
  if (opts.config.forwardAuthProxies.length > 0) await fastify.register(forwardAuthRoutes, {})
  await fastify.register(clientFiles)
  // Route guessing is limited like public routes.
  fastify.setNotFoundHandler({ preHandler: fastify.ipLimitHook('public', opts.config.limits.publicPerIp) }, notFoundHandler)
}

export default app

/** A route that needs a second factor when factors are off could never be reached: start-up stops. */
function refuseStepUpWithoutFactors (fastify: FastifyInstance, config: Config): void {
  const problems = stepUpWithoutFactors(fastify.proxyRouteTable().routes, config)
  if (problems.length > 0) throw new RoutesFileError(problems)
}


/** Creates the Fastify instance with the gateway's server options and registers the app. */
export async function buildGateway (options: AppOptions, logger?: FastifyServerOptions['logger']): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(options.config, logger)).withTypeProvider<TypeBoxTypeProvider>()
  // Not encapsulated, so callers (tests, the benchmark) reach the app's decorators.
  await fastify.register(fp(app, { name: 'auth-gateway' }), options)
  await fastify.ready()
  return fastify as unknown as FastifyInstance
}
