/**
 * The stub services' configuration: one TypeBox schema of the environment they read, validated
 * once at start-up (as the gateway's src/config.ts). STUB_ENV_NAMES is the one list of their
 * variable names (the deploy validator and test/unit/config-names.test.ts use it).
 */
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { DEFAULT_HOST, DEFAULT_JWKS_URL, LOG_LEVELS } from '../../src/lib/defaults.js'

const Port = Type.Integer({ minimum: 0, maximum: 65535 })

export const StubEnvSchema = Type.Object({
  NODE_ENV: Type.Optional(Type.String()),
  HOST: Type.String({ minLength: 1, default: DEFAULT_HOST }),
  USERS_PORT: Type.Optional(Port),
  ORDERS_PORT: Type.Optional(Port),
  GATEWAY_JWKS_URL: Type.String({ pattern: '^https?://[^\\s]+$', default: DEFAULT_JWKS_URL }),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'auth-gateway' }),
  GATEWAY_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  ORDERS_CLIENT_ID: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })),
  ORDERS_CLIENT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' })
})

export type StubEnv = Static<typeof StubEnvSchema>

export const STUB_ENV_NAMES: readonly string[] = Object.keys(StubEnvSchema.properties)

export class StubConfigError extends Error {
  override name = 'StubConfigError'
}

/** The stubs' environment, validated; throws StubConfigError naming the variable. */
export function loadStubEnv (source: NodeJS.ProcessEnv = process.env): StubEnv {
  const raw: Record<string, unknown> = {}
  for (const name of STUB_ENV_NAMES) {
    const value = source[name]
    if (value === undefined || value === '') continue
    const schema = StubEnvSchema.properties[name as keyof StubEnv]
    raw[name] = Type.IsInteger(schema) && /^\d{1,5}$/.test(value) ? Number(value) : value
  }
  const env = Value.Default(StubEnvSchema, raw) as Record<string, unknown>
  const [first] = Value.Errors(StubEnvSchema, env)
  if (first !== undefined) {
    const variable = first.instancePath.replace(/^\//, '').split('/')[0] || 'environment'
    throw new StubConfigError(`${variable}: invalid value ${JSON.stringify(raw[variable])} (${first.message})`)
  }
  return env as StubEnv
}
