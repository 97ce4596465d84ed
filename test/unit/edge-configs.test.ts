/**
 * The edge configurations that cannot run here (Traefik, Envoy, ingress-nginx, the Gateway API
 * with Envoy Gateway), checked offline: they parse, have the shape their proxy reads, ask
 * /auth/check, and name every header the gateway sends. (nginx and Caddy run for real:
 * test/integration/edge-nginx.test.ts, edge-caddy.test.ts.)
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { ROOT } from '../helpers/processes.js'

const GATEWAY_HEADERS = ['X-User-Id', 'X-User-Name', 'X-User-Roles', 'X-Client-Id', 'X-Client-Scopes', 'X-Request-Id',
  'X-Gateway-Assertion']

function load (path: string): { text: string, docs: any[] } {
  const text = readFileSync(join(ROOT, 'deploy/edge', path), 'utf8')
  const parsed = parseAllDocuments(text)
  const docs = parsed.map((d) => {
    if (d.errors.length > 0) throw new Error(`${path}: ${d.errors[0]!.message}`)
    return d.toJS()
  })
  return { text, docs }
}

/** Every header the gateway sends, in a list the proxy copies onto the upstream request. */
function namesAll (t: Test, list: unknown, what: string): void {
  t.ok(Array.isArray(list), `${what} is a list`)
  const names = (list as string[]).map((s) => s.toLowerCase())
  for (const h of GATEWAY_HEADERS) t.ok(names.includes(h.toLowerCase()), `${what} names ${h}`)
}

t.test('Traefik: ForwardAuth middleware', async (t) => {
  const { docs } = load('traefik/dynamic.yaml')
  const fa = docs[0].http.middlewares['auth-gateway'].forwardAuth
  t.match(fa.address, /\/auth\/check$/)
  t.equal(fa.trustForwardHeader, false)
  namesAll(t, fa.authResponseHeaders, 'authResponseHeaders')
  const strip = new RegExp(fa.authResponseHeadersRegex.replace('(?i)', ''), 'i')
  for (const h of [...GATEWAY_HEADERS.filter((n) => n !== 'X-Request-Id'), 'X-User-Email', 'X_User_Id', 'X-Gateway-Anything']) t.ok(
    strip.test(h), `a client's ${h} is replaced`)
  t.notOk(strip.test('X-Forwarded-For'))
  for (const name of ['users', 'orders']) t.same(docs[0].http.routers[name].middlewares, ['auth-gateway', 'drop-credentials'])
})

t.test('Envoy: ext_authz HTTP filter', async (t) => {
  const { docs, text } = load('envoy/envoy.yaml')
  const hcm = docs[0].static_resources.listeners[0].filter_chains[0].filters[0].typed_config
  const filters = hcm.http_filters.map((f: any) => f.name)
  t.same(filters, ['envoy.filters.http.lua', 'envoy.filters.http.ext_authz', 'envoy.filters.http.router'], 'strip, check, route')
  const authz = hcm.http_filters[1].typed_config
  t.equal(authz.http_service.path_prefix, '/auth/check')
  t.equal(authz.failure_mode_allow, false)
  namesAll(t, authz.http_service.authorization_response.allowed_upstream_headers.patterns.map((p: any) => p.exact),
    'allowed_upstream_headers')
  t.ok(authz.http_service.authorization_request.allowed_headers.patterns.some((p: any) => p.exact === 'authorization'), 'the token is sent')
  t.ok(authz.http_service.authorization_request.allowed_headers.patterns.some((p: any) => p.exact === 'x-forwarded-for'),
    'the client address is sent')
  t.equal(hcm.use_remote_address, true)
  t.match(text, /\^x%-user%-/)
  t.match(text, /\^x%-gateway%-/)
})

t.test('ingress-nginx: annotations', async (t) => {
  const { docs } = load('ingress-nginx/ingress.yaml')
  for (const doc of docs) {
    const model = doc.kind === 'Ingress' ? new Ingress(doc) : new ConfigMap(doc)
    t.doesNotThrow(() => model.validate(), `${doc.kind} ${doc.metadata.name} is valid`)
  }
  const api = docs.find((d) => d.metadata.name === 'api')
  t.match(api.metadata.annotations['nginx.ingress.kubernetes.io/auth-url'], /\/auth\/check$/)
  namesAll(t, api.metadata.annotations['nginx.ingress.kubernetes.io/auth-response-headers'].split(','), 'auth-response-headers')
})

t.test('Gateway API: Envoy Gateway SecurityPolicy extAuth', async (t) => {
  const { docs, text } = load('gateway-api/envoy-gateway.yaml')
  const kinds = docs.map((d) => d.kind)
  t.same(kinds.sort(), ['ClientTrafficPolicy', 'EnvoyExtensionPolicy', 'HTTPRoute', 'HTTPRoute', 'HTTPRouteFilter', 'SecurityPolicy'])
  const policy = docs.find((d) => d.kind === 'SecurityPolicy')
  t.equal(policy.apiVersion, 'gateway.envoyproxy.io/v1alpha1')
  t.equal(policy.spec.extAuth.http.path, '/auth/check')
  t.equal(policy.spec.extAuth.failOpen, false)
  namesAll(t, policy.spec.extAuth.http.headersToBackend, 'headersToBackend')
  t.ok(policy.spec.extAuth.headersToExtAuth.includes('authorization'))
  t.same(policy.spec.targetRefs, [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'api' }])
  t.match(text, /\^x%-user%-/)
})

t.test('nginx and Caddy name every header too', async (t) => {
  const nginx = readFileSync(join(ROOT, 'deploy/edge/nginx/auth-gateway.conf'), 'utf8')
  const caddy = readFileSync(join(ROOT, 'deploy/edge/caddy/Caddyfile'), 'utf8')
  for (const h of GATEWAY_HEADERS) {
    t.match(nginx, new RegExp(`proxy_set_header ${h} `), `nginx sends ${h} upstream`)
    t.match(caddy, new RegExp(`copy_headers .*\\b${h}\\b`), `Caddy copies ${h}`)
  }
})
