/**
 * Gateway configuration: one TypeBox schema of the environment, validated once at start-up.
 * The `Config` type is derived from the schema (plus the lists parsed out of it), never written twice.
 */
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { compile as compileTrust } from '@fastify/proxy-addr'
import { readFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { parseForwardAuthProxies, type ForwardAuthProxies } from './forward-auth/proxy-list.js'
import { DEFAULT_HOST, DEFAULT_PORTS, DEFAULT_UPSTREAM_URLS, LOG_LEVELS } from './lib/defaults.js'

const Port = (fallback: number) => Type.Integer({ minimum: 0, maximum: 65535, default: fallback })
const Seconds = (fallback: number) => Type.Integer({ minimum: 1, default: fallback })
const PerMinute = (fallback: number) => Type.Integer({ minimum: 1, default: fallback })
const HttpUrl = (fallback: string) => Type.String({ pattern: '^https?://[^\\s]+$', default: fallback })

/**
 * Every environment variable the gateway reads, with its default (docs/configuration.md and docs/abuse-protection.md): a
 * variable with a default is filled in before validation, so its type is never undefined.
 */
export const EnvSchema = Type.Object({
  PORT: Port(DEFAULT_PORTS.gateway),
  HOST: Type.String({ minLength: 1, default: DEFAULT_HOST }),
  NODE_ENV: Type.Optional(Type.String()),
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' }),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^[^\\s,:]+:\\d+(,[^\\s,:]+:\\d+)*$' })),
  // A command with no answer in this time fails (503): the default keeps the 1 s answer of docs/operations.md.
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 60000, default: 500 }),
  USERS_URL: HttpUrl(DEFAULT_UPSTREAM_URLS.USERS_URL),
  ORDERS_URL: HttpUrl(DEFAULT_UPSTREAM_URLS.ORDERS_URL),
  ROUTES_FILE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'auth-gateway' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'api' }),
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$' })),
  ACCESS_TOKEN_TTL: Seconds(900),
  REFRESH_TOKEN_TTL: Seconds(604800),
  REFRESH_REUSE_GRACE: Type.Integer({ minimum: 0, default: 10 }),
  JWT_KEYS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  TRUST_PROXY: Type.Optional(Type.String()),
  CORS_ORIGINS: Type.Optional(Type.String()),
  COOKIE_SECURE: Type.Boolean({ default: true }),
  UPSTREAM_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 10000 }),
  UPSTREAM_CA_FILE: Type.Optional(Type.String({ minLength: 1 })),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
  LOGIN_IP_LIMIT: PerMinute(10),
  LOCKOUT_THRESHOLD: PerMinute(5),
  LOCKOUT_SECONDS: Seconds(900),
  REFRESH_SESSION_LIMIT: PerMinute(10),
  VERIFY_IP_LIMIT: PerMinute(60),
  API_USER_LIMIT: PerMinute(600),
  API_CLIENT_LIMIT: PerMinute(600),
  PUBLIC_IP_LIMIT: PerMinute(60),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, default: 10000 }),
  // Verified tokens kept in memory (0: verify every signature).
  TOKEN_CACHE_SIZE: Type.Integer({ minimum: 0, default: 10000 }),
  UPSTREAM_USER_CONCURRENCY: Type.Integer({ minimum: 1, default: 32 }),
  SIMPLEJWT_COMPAT: Type.Boolean({ default: true }),
  LEGACY_SUNSET: Type.Optional(Type.String()),
  LEGACY_SIMPLEJWT_KEY: Type.Optional(Type.String({ minLength: 1 })),
  LEGACY_SIMPLEJWT_UNTIL: Type.Optional(Type.String()),
  DEMO_PAGE: Type.Boolean({ default: false }),
  USER_STATE_TTL: Seconds(60),
  AUDIT_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 7 }),
  AUDIT_MAX_EVENTS: Type.Integer({ minimum: 1000, default: 1_000_000 }),
  STUFFING_USERNAMES: Type.Integer({ minimum: 2, default: 10 }),
  IP_BLOCK_SECONDS: Seconds(3600),
  FORWARD_AUTH_PROXIES: Type.Optional(Type.String()),
  PROXY_DIRECT_GET: Type.Boolean({ default: true }),
  SESSION_CACHE: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' }),
  LIMIT_SYNC_MS: Type.Integer({ minimum: 10, maximum: 10000, default: 1000 }),
  DPOP_PROOF_WINDOW: Type.Integer({ minimum: 1, maximum: 600, default: 60 }),
  DPOP_NONCE: Type.Boolean({ default: false }),
  DPOP_REQUIRED: Type.Boolean({ default: false }),
  MFA_ENCRYPTION_KEY: Type.Optional(Type.String({ minLength: 1 })),
  WEBAUTHN_RP_ID: Type.Optional(Type.String({ pattern: '^[a-z0-9.-]{1,253}$' })),
  WEBAUTHN_ORIGINS: Type.Optional(Type.String()),
  ADMIN_MFA: Type.Union([Type.Literal('optional'), Type.Literal('required')], { default: 'optional' }),
  LIVE_CONNECTIONS_PER_USER: Type.Integer({ minimum: 1, default: 20 })
})

/** The names of every environment variable the gateway reads (the deploy validator and test/unit/config-names.test.ts use this list). */
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

/** An entry Fastify's trustProxy accepts: an address, a CIDR range or a proxy-addr range name (loopback, ...). */
function isAddressOrRange (entry: string): boolean {
  try {
    compileTrust(entry)
    return true
  } catch {
    return false
  }
}

function parseTrustProxy (value: string | undefined): boolean | number | string[] {
  if (value === undefined || value.trim() === '' || value === 'false') return false
  if (value === 'true') return true
  // A hop count, as Fastify's trustProxy takes it: trust that many proxies in front.
  if (/^\d{1,2}$/.test(value.trim())) return Number(value.trim())
  const entries = splitList(value)
  const bad = entries.find((e) => !isAddressOrRange(e))
  if (bad !== undefined) throw new ConfigError('TRUST_PROXY',
    `invalid value ${JSON.stringify(bad)} (must be true, a hop count, or addresses and CIDR ranges separated by commas)`)
  return entries
}

function parseHttpDate (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) throw new ConfigError('LEGACY_SUNSET',
    `invalid value ${JSON.stringify(value)} (must be an HTTP date, e.g. Wed, 01 Jul 2026 00:00:00 GMT)`)
  return new Date(ms).toUTCString()
}

/** The cut-over exchange of docs/simplejwt-api.md: both variables or neither, so the window always closes. */
function parseLegacy (key: string | undefined, until: string | undefined): { key: Uint8Array, untilMs: number } | null {
  if (key === undefined && until === undefined) return null
  if (key === undefined) throw new ConfigError('LEGACY_SIMPLEJWT_KEY', 'is required when LEGACY_SIMPLEJWT_UNTIL is set')
  if (until === undefined) throw new ConfigError('LEGACY_SIMPLEJWT_UNTIL',
    'is required when LEGACY_SIMPLEJWT_KEY is set (the exchange window must close)')
  const untilMs = /^\d{4}-\d{2}-\d{2}/.test(until) ? Date.parse(until) : Number.NaN
  if (Number.isNaN(untilMs)) throw new ConfigError('LEGACY_SIMPLEJWT_UNTIL',
    `invalid value ${JSON.stringify(until)} (must be an ISO date, e.g. 2026-07-01 or 2026-07-01T00:00:00Z)`)
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
    try { new X509Certificate(pem) } catch { throw new ConfigError('UPSTREAM_CA_FILE',
      `certificate ${i + 1} of ${JSON.stringify(path)} does not parse`) }
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

/**
 * Second factors: the key that encrypts factor secrets before they reach the identity backend, the
 * WebAuthn relying party, and ADMIN_MFA. Anything that relies on factors without the key stops
 * start-up, so factors are never half configured.
 */
function parseMfa (env: Env): { key: Buffer | null, rpId: string | null, origins: string[], adminRequired: boolean } {
  let key: Buffer | null = null
  if (env.MFA_ENCRYPTION_KEY !== undefined) {
    key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(env.MFA_ENCRYPTION_KEY) ? Buffer.from(env.MFA_ENCRYPTION_KEY, 'base64') : Buffer.alloc(0)
    if (key.length !== 32) throw new ConfigError('MFA_ENCRYPTION_KEY', 'must be 32 random bytes, base64 (e.g. openssl rand -base64 32)')
  }
  const origins = splitList(env.WEBAUTHN_ORIGINS)
  const badOrigin = origins.find((o) => !/^https?:\/\/[^\s/?#]+$/.test(o))
  if (badOrigin !== undefined) throw new ConfigError('WEBAUTHN_ORIGINS', `invalid origin ${JSON.stringify(badOrigin)} (scheme://host[:port], comma-separated)`)
  const adminRequired = env.ADMIN_MFA === 'required'
  if (key === null) {
    if (adminRequired) throw new ConfigError(
      'MFA_ENCRYPTION_KEY',
      'is required when ADMIN_MFA=required (factor secrets are encrypted with it)'
    )
    if (env.WEBAUTHN_RP_ID !== undefined) throw new ConfigError(
      'MFA_ENCRYPTION_KEY',
      'is required when WEBAUTHN_RP_ID is set (factor records are encrypted with it)'
    )
  }
  if ((env.WEBAUTHN_RP_ID === undefined) !== (origins.length === 0)) {
    throw new ConfigError(
      env.WEBAUTHN_RP_ID === undefined ? 'WEBAUTHN_RP_ID' : 'WEBAUTHN_ORIGINS',
      'WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS go together (passkeys need both)'
    )
  }
  return { key, rpId: env.WEBAUTHN_RP_ID ?? null, origins, adminRequired }
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
  const converted = Value.Default(EnvSchema, { ...Value.Convert(EnvSchema, { ...raw }) as Record<string, unknown>, ...strictIntegers })
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
  vars.USERS_URL = env.USERS_URL
  vars.ORDERS_URL = env.ORDERS_URL
  return vars
}

/** Validates the environment and returns the gateway's configuration; throws ConfigError. */
export function loadConfig (source: NodeJS.ProcessEnv = process.env) {
  const env = readEnv(source)
  const config = {
    port: env.PORT,
    host: env.HOST,
    production: env.NODE_ENV === 'production',
    redis: {
      url: env.REDIS_URL,
      clusterNodes: splitList(env.REDIS_CLUSTER_NODES).map((hostPort) => {
        const at = hostPort.lastIndexOf(':')
        return { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) }
      }),
      commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS
    },
    upstreams: {
      users: env.USERS_URL,
      orders: env.ORDERS_URL
    },
    routes: {
      /** Upstreams and routes (src/proxy/routes-file.ts); unset: config/demo-routes.yaml. */
      file: env.ROUTES_FILE,
      /** What `${NAME}` in a routes file's urls may name: the `*_URL` variables, with the defaults above. */
      urlVars: urlVariables(source, env)
    },
    jwt: {
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      accessTtl: env.ACCESS_TOKEN_TTL,
      refreshTtl: env.REFRESH_TOKEN_TTL,
      reuseGrace: env.REFRESH_REUSE_GRACE,
      keysFile: env.JWT_KEYS_FILE,
      cacheSize: env.TOKEN_CACHE_SIZE
    },
    /** The gateway's public base URL for the OAuth metadata's endpoints (default: each request's scheme and host). */
    publicUrl: env.PUBLIC_URL?.replace(/\/+$/, ''),
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    corsOrigins: splitList(env.CORS_ORIGINS),
    cookieSecure: env.COOKIE_SECURE,
    upstreamTimeoutMs: env.UPSTREAM_TIMEOUT_MS,
    /** CA certificates for https upstreams instead of Node's bundled roots (undefined: those roots). */
    upstreamCa: readCaFile(env.UPSTREAM_CA_FILE),
    /** Proxied requests one user may have in flight on this replica (429 past it). */
    upstreamUserConcurrency: env.UPSTREAM_USER_CONCURRENCY,
    /** GETs without a body take the direct proxy path (docs/proxy-paths.md); false: every request goes through reply-from. */
    proxyDirectGet: env.PROXY_DIRECT_GET,
    logLevel: env.LOG_LEVEL,
    limits: {
      loginPerIp: env.LOGIN_IP_LIMIT,
      lockoutThreshold: env.LOCKOUT_THRESHOLD,
      lockoutSeconds: env.LOCKOUT_SECONDS,
      refreshPerSession: env.REFRESH_SESSION_LIMIT,
      verifyPerIp: env.VERIFY_IP_LIMIT,
      apiPerUser: env.API_USER_LIMIT,
      /** Proxied and token requests per machine client (docs/machine-clients.md). */
      apiPerClient: env.API_CLIENT_LIMIT,
      publicPerIp: env.PUBLIC_IP_LIMIT
    },
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    simplejwt: {
      enabled: env.SIMPLEJWT_COMPAT,
      /** The legacy alias's `Sunset` header (an IMF-fixdate), when LEGACY_SUNSET is set. */
      sunset: parseHttpDate(env.LEGACY_SUNSET)
    },
    legacy: parseLegacy(env.LEGACY_SIMPLEJWT_KEY, env.LEGACY_SIMPLEJWT_UNTIL),
    /** Serve the demo page at /demo/ (the dev stack turns it on). */
    demoPage: env.DEMO_PAGE,
    /** Seconds a user's active flag and roles are trusted before the users service is asked again (docs/live-user-state.md). */
    userStateTtl: env.USER_STATE_TTL,
    audit: {
      retentionDays: env.AUDIT_RETENTION_DAYS,
      /** The Stream's length cap, on top of the retention. */
      maxEvents: env.AUDIT_MAX_EVENTS,
      /** Distinct usernames failing from one client IP within 10 minutes that block the IP. */
      stuffingUsernames: env.STUFFING_USERNAMES,
      ipBlockSeconds: env.IP_BLOCK_SECONDS
    },
    /** Proxies allowed to ask /auth/check, each with its header style; empty: the endpoint does not exist. */
    forwardAuthProxies: forwardAuthProxies(env.FORWARD_AUTH_PROXIES),
    /**
     * Session checks cached per replica and request counters sent in batches (docs/session-cache.md); off: a Redis round trip per request.
     */
    sessionCache: env.SESSION_CACHE === 'on',
    /** How often counted requests are sent to Redis in batches (ms). */
    limitSyncMs: env.LIMIT_SYNC_MS,
    /** Sender-constrained tokens (docs/dpop.md). */
    dpop: {
      /** Seconds a proof's `iat` may lie from now, either way; its `jti` is remembered twice as long. */
      proofWindow: env.DPOP_PROOF_WINDOW,
      /** Demand the gateway's own nonces in proofs. */
      nonce: env.DPOP_NONCE,
      /** Every login and refresh must bring a proof. */
      required: env.DPOP_REQUIRED
    },
    /** Second factors (src/mfa/, docs/mfa.md); off without MFA_ENCRYPTION_KEY. */
    mfa: parseMfa(env),
    /** WebSockets and streamed answers one user, client or (public routes) client IP may have open on this replica. */
    liveConnectionsPerUser: env.LIVE_CONNECTIONS_PER_USER
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
