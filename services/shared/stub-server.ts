/** Starts a stub service from the environment (USERS_PORT / ORDERS_PORT, GATEWAY_JWKS_URL, JWT_ISSUER). */
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { remoteGatewayKeys, type AssertionOptions } from './gateway-assertion.js'

type Builder = (opts: Omit<AssertionOptions, 'audience'>, logger: { level: string }) => Promise<FastifyInstance>

export async function startStub (build: Builder, portVariable: string, defaultPort: number): Promise<void> {
  const port = Number(process.env[portVariable] ?? defaultPort)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`invalid configuration: ${portVariable}: not a port number\n`)
    process.exit(1)
  }
  const jwksUrl = process.env.GATEWAY_JWKS_URL ?? 'http://127.0.0.1:8080/.well-known/jwks.json'
  const app = await build({ keys: remoteGatewayKeys(jwksUrl), issuer: process.env.JWT_ISSUER ?? 'auth-gateway' }, { level: process.env.LOG_LEVEL ?? 'info' })
  closeWithGrace({ delay: 5000 }, async () => { await app.close() })
  await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' })
}
