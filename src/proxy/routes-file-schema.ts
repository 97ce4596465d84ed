/**
 * The format of a routes file (ROUTES_FILE): upstreams and routes, one TypeBox schema. The shipped
 * JSON Schema (config/routes.schema.json, for editors) is generated from it (`npm run routes:schema`),
 * and docs/adding-your-service.md describes it. Rules that span fields (public with roles, unknown
 * upstreams, duplicates, `${NAME}` in urls) are checked in routes-file.ts.
 */
import { Type, type Static } from 'typebox'

/** Methods a route may list; OPTIONS belongs to the gateway's CORS layer and is never forwarded. */
export const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
const Method = Type.Union(ROUTE_METHODS.map((m) => Type.Literal(m)))
const MethodKey = `^(${ROUTE_METHODS.join('|')})$`

/** Upstream names end up as the assertion's `aud` and as metric labels: short and plain. */
export const UPSTREAM_NAME = '^[a-z][a-z0-9_-]{0,62}$'

export const UpstreamSchema = Type.Object({
  url: Type.String({ minLength: 1,
    description: 'http or https URL of the service, without userinfo; may be "${NAME}" of an environment variable whose name ends in ' +
      '_URL' }),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000,
    description: 'Wait for the answer\'s head, in milliseconds (default: UPSTREAM_TIMEOUT_MS)' }))
}, { additionalProperties: false })

const NonEmptyStrings = Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true })

export const RouteSchema = Type.Object({
  path: Type.String({ pattern: '^/', description: 'Normalized path: the route matches it and, unless exact, every path below it' }),
  upstream: Type.String({ minLength: 1, description: 'Name of one of the upstreams' }),
  exact: Type.Optional(Type.Boolean({ description: 'Match the path itself only, nothing below it' })),
  methods: Type.Optional(Type.Array(Method, { minItems: 1, uniqueItems: true,
    description: 'Methods allowed (default: all); any other is 404' })),
  public: Type.Optional(Type.Boolean({ description: 'No token needed; no identity is forwarded' })),
  roles: Type.Optional({ ...NonEmptyStrings, description: 'The user needs one of these roles' }),
  scopes: Type.Optional(Type.Record(Type.String({ pattern: MethodKey }), NonEmptyStrings, {
    minProperties: 1,
    additionalProperties: false,
    description: 'By method, the scopes of which a machine client needs one (HEAD falls back to GET); without it the route is closed to ' +
      'clients'
  })),
  limit: Type.Optional(Type.Union([Type.Literal('api'), Type.Literal('public')],
    { description: 'api: counted per user or client (default); public: per client IP (default on public routes)' })),
  body_limit: Type.Optional(Type.Integer({ minimum: 0, description: 'Largest request body in bytes (default 1048576); larger is 413' })),
  websocket: Type.Optional(Type.Boolean({
    description: 'Allow WebSocket upgrades (the handshake is authorized as a GET of the route; docs/live-connections.md)'
  })),
  step_up_max_age: Type.Optional(Type.Integer({
    minimum: 1,
    description: 'A user needs a second factor used within this many seconds (else 401 insufficient_user_authentication with max_age, ' +
      'RFC 9470); needs MFA_ENCRYPTION_KEY'
  })),
  password_check: Type.Optional(Type.Boolean({
    description: 'The upstream checks the caller\'s password here: attempts count like logins'
  }))
}, { additionalProperties: false })

export const RoutesFileSchema = Type.Object({
  upstreams: Type.Record(Type.String({ pattern: UPSTREAM_NAME }), UpstreamSchema, { minProperties: 1, additionalProperties: false }),
  routes: Type.Array(RouteSchema)
}, { additionalProperties: false })

export type RoutesFile = Static<typeof RoutesFileSchema>
export type RouteEntry = RoutesFile['routes'][number]

/** The body limit of a route that sets none. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024

/** The JSON Schema document shipped for editors (config/routes.schema.json). */
export function routesJsonSchema (): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'auth-gateway routes file (ROUTES_FILE)',
    ...JSON.parse(JSON.stringify(RoutesFileSchema)) as Record<string, unknown>
  }
}
