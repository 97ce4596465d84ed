/**
 * Starts a stub service from the environment (services/shared/stub-config.ts: USERS_PORT / ORDERS_PORT, GATEWAY_JWKS_URL,
 * JWT_ISSUER, ...).
 */
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { remoteGatewayKeys, type AssertionOptions } from './gateway-assertion.js'
import { loadStubEnv, StubConfigError, type StubEnv } from './stub-config.js'

type Builder = (opts: Omit<AssertionOptions, 'audience'>, logger: { level: string }, env: StubEnv) => Promise<FastifyInstance>

export async function startStub (build: Builder, portVariable: 'USERS_PORT' | 'ORDERS_PORT', defaultPort: number): Promise<void> {
  let env: StubEnv
  try {
    env = loadStubEnv(process.env)
  } catch (err) {
    if (err instanceof StubConfigError) {
      process.stderr.write(`invalid configuration: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  const port = env[portVariable] ?? defaultPort
  const app = await build({ keys: remoteGatewayKeys(env.GATEWAY_JWKS_URL), issuer: env.JWT_ISSUER }, { level: env.LOG_LEVEL }, env)
  closeWithGrace({ delay: 5000 }, async () => { await app.close() })
  await app.listen({ port, host: env.HOST })
}
