/**
 * Gateway configuration: one TypeBox schema of the environment, validated once at start-up.
 * The `Config` type is derived from the schema (plus the lists parsed out of it), never written twice.
 */
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { isIP } from 'node:net'
import { readFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { parseForwardAuthProxies, type ForwardAuthProxies } from './forward-auth/proxy-list.js'

const Port = Type.Integer({ minimum: 0, maximum: 65535 })
const Seconds = Type.Integer({ minimum: 1 })
const PerMinute = Type.Integer({ minimum: 1 })
const HttpUrl = Type.String({ pattern: '^https?://[^\\s]+$' })

/** Every environment variable the gateway reads, with its default (contract section 2 and 6). */
export const EnvSchema = Type.Object({
  PORT: Type.Optional(Port),
  HOST: Type.Optional(Type.String({ minLength: 1 })),
  NODE_ENV: Type.Optional(Type.String()),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^[^\\s,:]+:\\d+(,[^\\s,:]+:\\d+)*$' })),
  REDIS_COMMAND_TIMEOUT_MS: Type.Optional(Type.Integer({ minimum: 50, maximum: 60000 })),
  USERS_URL: Type.Optional(HttpUrl),
  ORDERS_URL: Type.Optional(HttpUrl),
  ROUTES_FILE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$' })),
  ACCESS_TOKEN_TTL: Type.Optional(Seconds),
  REFRESH_TOKEN_TTL: Type.Optional(Seconds),
  REFRESH_REUSE_GRACE: Type.Optional(Type.Integer({ minimum: 0 })),
  JWT_KEYS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  TRUST_PROXY: Type.Optional(Type.String()),
  CORS_ORIGINS: Type.Optional(Type.String()),
  COOKIE_SECURE: Type.Optional(Type.Boolean()),
  UPSTREAM_TIMEOUT_MS: Type.Optional(Type.Integer({ minimum: 1 })),
  UPSTREAM_CA_FILE: Type.Optional(Type.String({ minLength: 1 })),
  LOG_LEVEL: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)))),
  LOGIN_IP_LIMIT: Type.Optional(PerMinute),
  LOCKOUT_THRESHOLD: Type.Optional(PerMinute),
  LOCKOUT_SECONDS: Type.Optional(Seconds),
  REFRESH_SESSION_LIMIT: Type.Optional(PerMinute),
  VERIFY_IP_LIMIT: Type.Optional(PerMinute),
  API_USER_LIMIT: Type.Optional(PerMinute),
  API_CLIENT_LIMIT: Type.Optional(PerMinute),
  PUBLIC_IP_LIMIT: Type.Optional(PerMinute),
  SHUTDOWN_GRACE_MS: Type.Optional(Type.Integer({ minimum: 0 })),
  TOKEN_CACHE_SIZE: Type.Optional(Type.Integer({ minimum: 0 })),
  UPSTREAM_USER_CONCURRENCY: Type.Optional(Type.Integer({ minimum: 1 })),
  SIMPLEJWT_COMPAT: Type.Optional(Type.Boolean()),
  LEGACY_SUNSET: Type.Optional(Type.String()),
  LEGACY_SIMPLEJWT_KEY: Type.Optional(Type.String({ minLength: 1 })),
  LEGACY_SIMPLEJWT_UNTIL: Type.Optional(Type.String()),
  DEMO_PAGE: Type.Optional(Type.Boolean()),
  USER_STATE_TTL: Type.Optional(Seconds),
  AUDIT_RETENTION_DAYS: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  AUDIT_MAX_EVENTS: Type.Optional(Type.Integer({ minimum: 1000 })),
  STUFFING_USERNAMES: Type.Optional(Type.Integer({ minimum: 2 })),
  IP_BLOCK_SECONDS: Type.Optional(Seconds),
  FORWARD_AUTH_PROXIES: Type.Optional(Type.String()),
  LIVE_CONNECTIONS_PER_USER: Type.Optional(Type.Integer({ minimum: 1 }))
})

/** The names of every environment variable the gateway reads (the deploy validator and the README test use this list). */
export const GATEWAY_ENV_NAMES: readonly string[] = Object.keys(EnvSchema.properties)

export type Env = Static<typeof EnvSchema>

/** A configuration error names the variable and what is wrong, in one line. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor (readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`)
  }
}

function splitList (value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0)
}

/** proxy-addr's names for address ranges, accepted in TRUST_PROXY like Fastify does. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal'])

function isAddressOrRange (entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true
  const [address = '', prefix, ...rest] = entry.split('/')
  const version = isIP(address)
  if (version === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128)
}

function parseTrustProxy (value: string | undefined): boolean | number | string[] {
  if (value === undefined || value.trim() === '' || value === 'false') return false
  if (value === 'true') return true
  // A hop count, as Fastify's trustProxy takes it: trust that many proxies in front.
  if (/^\d{1,2}$/.test(value.trim())) return Number(value.trim())
  const entries = splitList(value)
  const bad = entries.find((e) => !isAddressOrRange(e))
  if (bad !== undefined) throw new ConfigError('TRUST_PROXY', `invalid value ${JSON.stringify(bad)} (must be true, a hop count, or addresses and CIDR ranges separated by commas)`)
  return entries
}

function parseHttpDate (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) throw new ConfigError('LEGACY_SUNSET', `invalid value ${JSON.stringify(value)} (must be an HTTP date, e.g. Wed, 01 Jul 2026 00:00:00 GMT)`)
  return new Date(ms).toUTCString()
}

/** The cut-over exchange of section 9: both variables or neither, so the window always closes. */
function parseLegacy (key: string | undefined, until: string | undefined): { key: Uint8Array, untilMs: number } | null {
  if (key === undefined && until === undefined) return null
  if (key === undefined) throw new ConfigError('LEGACY_SIMPLEJWT_KEY', 'is required when LEGACY_SIMPLEJWT_UNTIL is set')
  if (until === undefined) throw new ConfigError('LEGACY_SIMPLEJWT_UNTIL', 'is required when LEGACY_SIMPLEJWT_KEY is set (the exchange window must close)')
  const untilMs = /^\d{4}-\d{2}-\d{2}/.test(until) ? Date.parse(until) : Number.NaN
  if (Number.isNaN(untilMs)) throw new ConfigError('LEGACY_SIMPLEJWT_UNTIL', `invalid value ${JSON.stringify(until)} (must be an ISO date, e.g. 2026-07-01 or 2026-07-01T00:00:00Z)`)
  return { key: new TextEncoder().encode(key), untilMs }
}

/**
 * UPSTREAM_CA_FILE: the PEM certificates trusted for https upstreams, read and parsed at start-up
 * so that an unreadable or empty bundle stops it instead of failing every proxied request later.
 */
function readCaFile (path: string | undefined): string[] | undefined {
  if (path === undefined) return undefined
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError('UPSTREAM_CA_FILE', `cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (pems.length === 0) throw new ConfigError('UPSTREAM_CA_FILE', `${JSON.stringify(path)} holds no PEM certificate`)
  for (const [i, pem] of pems.entries()) {
    try { new X509Certificate(pem) } catch { throw new ConfigError('UPSTREAM_CA_FILE', `certificate ${i + 1} of ${JSON.stringify(path)} does not parse`) }
  }
  return pems
}

function forwardAuthProxies (value: string | undefined): ForwardAuthProxies {
  try {
    return parseForwardAuthProxies(splitList(value))
  } catch (err) {
    throw new ConfigError('FORWARD_AUTH_PROXIES', (err as Error).message)
  }
}

/** Reads only the variables of the schema, converting strings to numbers and booleans. */
function readEnv (source: NodeJS.ProcessEnv): Env {
  const raw: Record<string, unknown> = {}
  const strictIntegers: Record<string, unknown> = {}
  for (const name of Object.keys(EnvSchema.properties)) {
    const value = source[name]
    if (value === undefined || value === '') continue
    raw[name] = value
    // Integers come only from plain decimal digits: Value.Convert would turn "1.5" into 1, "true"
    // into 1 and "1e3" into 1000. Anything else stays a string and fails validation below.
    if (Type.IsInteger(EnvSchema.properties[name as keyof Env])) {
      strictIntegers[name] = /^-?\d{1,15}$/.test(value) ? Number(value) : value
    }
  }
  // Value.Convert changes its argument in place: it gets a copy so that errors quote the raw value.
  const converted = { ...Value.Convert(EnvSchema, { ...raw }) as Record<string, unknown>, ...strictIntegers }
  const [first] = Value.Errors(EnvSchema, converted)
  if (first !== undefined) {
    const variable = first.instancePath.replace(/^\//, '').split('/')[0] || 'environment'
    const allowed = (EnvSchema.properties[variable as keyof Env] as { anyOf?: Array<{ const?: unknown }> } | undefined)?.anyOf
    const problem = allowed !== undefined ? `must be one of ${allowed.map((s) => s.const).join(', ')}` : first.message
    throw new ConfigError(variable, `invalid value ${JSON.stringify(raw[variable])} (${problem})`)
  }
  return converted as Env
}

/** The `*_URL` variables of the environment, with USERS_URL and ORDERS_URL defaulted. */
function urlVariables (source: NodeJS.ProcessEnv, env: Env): Record<string, string> {
  const vars: Record<string, string> = {}
  for (const [name, value] of Object.entries(source)) if (name.endsWith('_URL') && value !== undefined && value !== '') vars[name] = value
  vars.USERS_URL = env.USERS_URL ?? 'http://127.0.0.1:3001'
  vars.ORDERS_URL = env.ORDERS_URL ?? 'http://127.0.0.1:3002'
  return vars
}

/** Validates the environment and returns the gateway's configuration; throws ConfigError. */
export function loadConfig (source: NodeJS.ProcessEnv = process.env) {
  const env = readEnv(source)
  const config = {
    port: env.PORT ?? 8080,
    host: env.HOST ?? '127.0.0.1',
    production: env.NODE_ENV === 'production',
    redis: {
      url: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      clusterNodes: splitList(env.REDIS_CLUSTER_NODES).map((hostPort) => {
        const at = hostPort.lastIndexOf(':')
        return { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) }
      }),
      /** A command with no answer in this time fails (503): the default keeps contract 7's 1 s. */
      commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS ?? 500
    },
    upstreams: {
      users: env.USERS_URL ?? 'http://127.0.0.1:3001',
      orders: env.ORDERS_URL ?? 'http://127.0.0.1:3002'
    },
    routes: {
      /** Upstreams and routes (src/proxy/routes-file.ts); unset: config/demo-routes.yaml. */
      file: env.ROUTES_FILE,
      /** What `${NAME}` in a routes file's urls may name: the `*_URL` variables, with the defaults above. */
      urlVars: urlVariables(source, env)
    },
    jwt: {
      issuer: env.JWT_ISSUER ?? 'auth-gateway',
      audience: env.JWT_AUDIENCE ?? 'api',
      accessTtl: env.ACCESS_TOKEN_TTL ?? 900,
      refreshTtl: env.REFRESH_TOKEN_TTL ?? 604800,
      reuseGrace: env.REFRESH_REUSE_GRACE ?? 10,
      keysFile: env.JWT_KEYS_FILE,
      /** Verified tokens kept in memory (0: verify every signature). */
      cacheSize: env.TOKEN_CACHE_SIZE ?? 10000
    },
    /** The gateway's public base URL for the OAuth metadata's endpoints (default: each request's scheme and host). */
    publicUrl: env.PUBLIC_URL?.replace(/\/+$/, ''),
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    corsOrigins: splitList(env.CORS_ORIGINS),
    cookieSecure: env.COOKIE_SECURE ?? true,
    upstreamTimeoutMs: env.UPSTREAM_TIMEOUT_MS ?? 10000,
    /** CA certificates for https upstreams instead of Node's bundled roots (undefined: those roots). */
    upstreamCa: readCaFile(env.UPSTREAM_CA_FILE),
    /** Proxied requests one user may have in flight on this replica (429 past it). */
    upstreamUserConcurrency: env.UPSTREAM_USER_CONCURRENCY ?? 32,
    logLevel: env.LOG_LEVEL ?? 'info',
    limits: {
      loginPerIp: env.LOGIN_IP_LIMIT ?? 10,
      lockoutThreshold: env.LOCKOUT_THRESHOLD ?? 5,
      lockoutSeconds: env.LOCKOUT_SECONDS ?? 900,
      refreshPerSession: env.REFRESH_SESSION_LIMIT ?? 10,
      verifyPerIp: env.VERIFY_IP_LIMIT ?? 60,
      apiPerUser: env.API_USER_LIMIT ?? 600,
      /** Proxied and token requests per machine client (contract 13). */
      apiPerClient: env.API_CLIENT_LIMIT ?? 600,
      publicPerIp: env.PUBLIC_IP_LIMIT ?? 60
    },
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS ?? 10000,
    simplejwt: {
      enabled: env.SIMPLEJWT_COMPAT ?? true,
      /** The legacy alias's `Sunset` header (an IMF-fixdate), when LEGACY_SUNSET is set. */
      sunset: parseHttpDate(env.LEGACY_SUNSET)
    },
    legacy: parseLegacy(env.LEGACY_SIMPLEJWT_KEY, env.LEGACY_SIMPLEJWT_UNTIL),
    /** Serve the demo page at /demo/ (the dev stack turns it on). */
    demoPage: env.DEMO_PAGE ?? false,
    /** Seconds a user's active flag and roles are trusted before the users service is asked again (contract 10). */
    userStateTtl: env.USER_STATE_TTL ?? 60,
    audit: {
      retentionDays: env.AUDIT_RETENTION_DAYS ?? 7,
      /** The Stream's length cap, on top of the retention. */
      maxEvents: env.AUDIT_MAX_EVENTS ?? 1_000_000,
      /** Distinct usernames failing from one client IP within 10 minutes that block the IP. */
      stuffingUsernames: env.STUFFING_USERNAMES ?? 10,
      ipBlockSeconds: env.IP_BLOCK_SECONDS ?? 3600
    },
    /** Proxies allowed to ask /auth/check, each with its header style; empty: the endpoint does not exist. */
    forwardAuthProxies: forwardAuthProxies(env.FORWARD_AUTH_PROXIES),
    /** WebSockets and streamed answers one user, client or (public routes) client IP may have open on this replica. */
    liveConnectionsPerUser: env.LIVE_CONNECTIONS_PER_USER ?? 20
  }
  if (config.jwt.accessTtl >= config.jwt.refreshTtl) {
    throw new ConfigError('ACCESS_TOKEN_TTL', 'must be shorter than REFRESH_TOKEN_TTL')
  }
  if (config.production && config.jwt.keysFile === undefined) {
    throw new ConfigError('JWT_KEYS_FILE', 'is required when NODE_ENV=production (no ephemeral keys in production)')
  }
  return config
}

export type Config = ReturnType<typeof loadConfig>
