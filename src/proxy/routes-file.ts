/**
 * Reads and validates a routes file (ROUTES_FILE, YAML or JSON) into the upstreams and routes the
 * proxy uses. Every problem is reported as one line naming the file, the line, the route or
 * upstream, and what is wrong; the same lines serve the start-up refusal, the reload log and
 * `npm run routes:check`.
 *
 * The file is a security boundary: unknown fields are refused (a typo such as `role:` must never
 * open a route), `${NAME}` may only name `*_URL` variables and only in `url`, and no message ever
 * shows an interpolated value. A file that others than its owner and root may write is refused:
 * write access to it is admin access to the gateway.
 */
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { LineCounter, isNode, parseDocument, type Document } from 'yaml'
import { Value } from 'typebox/value'
import { normalizePath } from './normalize-path.js'
import { DEFAULT_BODY_LIMIT, RouteSchema, RoutesFileSchema, UPSTREAM_NAME, type RouteEntry, type RoutesFile } from './routes-file-schema.js'
import type { ProxyRoute } from './route-table.js'
import { DEFAULT_UPSTREAM_URLS } from '../lib/defaults.js'

/** config/demo-routes.yaml of the project, whether the code runs from src/ (tests) or dist/src/. */
export const DEMO_ROUTES_FILE = ((): string => {
  const base = resolve(import.meta.dirname, '..', '..')
  return join(basename(base) === 'dist' ? resolve(base, '..') : base, 'config', 'demo-routes.yaml')
})()

/** USERS_URL and ORDERS_URL as the gateway defaults them (src/config.ts). */
export const DEMO_URL_DEFAULTS: Readonly<Record<string, string>> = DEFAULT_UPSTREAM_URLS

export interface UpstreamSpec {
  name: string
  /** The resolved URL: never logged or shown (it may come from the environment). */
  url: string
  /** Undefined: UPSTREAM_TIMEOUT_MS. */
  timeoutMs: number | undefined
}

export interface RoutesSpec {
  file: string
  sha256: string
  upstreams: ReadonlyMap<string, UpstreamSpec>
  routes: ProxyRoute[]
}

export interface RoutesFileOptions {
  /** Values of `${NAME}` (the environment's `*_URL` variables). */
  vars: Readonly<Record<string, string | undefined>>
  /** Refuse a file that others than its owner and root may write (default true). */
  checkPermissions?: boolean
}

/** An invalid routes file: one line per problem. */
export class RoutesFileError extends Error {
  override name = 'RoutesFileError'
  constructor (readonly problems: readonly string[]) {
    super(problems.join('\n'))
  }
}

const INTERPOLATION = /\$\{([^}]*)\}/g
const URL_VARIABLE = /^[A-Z][A-Z0-9_]*_URL$/

type Where = string

class Problems {
  readonly lines: string[] = []
  constructor (readonly file: string, readonly doc: Document | null, readonly counter: LineCounter) {}

  /** The line of the node at `path` (or of its nearest ancestor that exists). */
  lineOf (path: ReadonlyArray<string | number>): number | undefined {
    if (this.doc === null) return undefined
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true)
      if (isNode(node) && node.range !== undefined && node.range !== null) {
        // A key's own line reads better than its value's for a field.
        const pair = n > 0 ? this.keyLine(path.slice(0, n)) : undefined
        return pair ?? this.counter.linePos(node.range[0]).line
      }
    }
    return undefined
  }

  private keyLine (path: ReadonlyArray<string | number>): number | undefined {
    const last = path.at(-1)
    if (typeof last !== 'string' || this.doc === null) return undefined
    const parent = path.length === 1 ? this.doc.contents : this.doc.getIn(path.slice(0, -1), true)
    const items = (parent as { items?: Array<{ key?: unknown }> } | null)?.items
    const pair = items?.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === last)
    const range = isNode(pair?.key) ? pair.key.range : undefined
    return range !== undefined && range !== null ? this.counter.linePos(range[0]).line : undefined
  }

  add (path: ReadonlyArray<string | number>, where: Where, problem: string): void {
    const line = this.lineOf(path)
    this.lines.push(`${this.file}${line !== undefined ? `:${line}` : ''}: ${where}: ${problem}`)
  }
}

/** How a problem names its place: `route /api/x`, `upstream billing`, or `file`. */
function whereOf (data: unknown, path: ReadonlyArray<string | number>): Where {
  if (path[0] === 'upstreams' && typeof path[1] === 'string') return `upstream ${path[1]}`
  if (path[0] === 'routes' && typeof path[1] === 'number') {
    const route = (data as { routes?: unknown[] }).routes?.[path[1]] as { path?: unknown } | undefined
    return typeof route?.path === 'string' ? `route ${route.path}` : `route #${path[1] + 1}`
  }
  return 'file'
}

function pathOf (instancePath: string): Array<string | number> {
  if (instancePath === '') return []
  return instancePath.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).map((p) => /^\d+$/.test(p) ? Number(p) : p)
}

/** Schema errors, one per place, in words. */
function schemaProblems (data: unknown, problems: Problems): void {
  // TypeBox buffers a few errors per call: the file's frame and upstreams, then each route alone.
  const routes = (data as { routes?: unknown } | null)?.routes
  const frame = Array.isArray(routes) ? { ...(data as object), routes: [] } : data
  report(Value.Errors(RoutesFileSchema, frame), [], data, problems)
  if (Array.isArray(routes)) routes.forEach((route, i) => { report(Value.Errors(RouteSchema, route), ['routes', i], data, problems) })
}

function report (errors: ReturnType<typeof Value.Errors>, at: Array<string | number>, data: unknown, problems: Problems): void {
  const byPlace = new Map<string, typeof errors>()
  for (const error of errors) {
    // Each unknown field is also reported as its own `false` schema; the summary adds nothing.
    if (error.keyword === 'additionalProperties') continue
    byPlace.set(error.instancePath, [...(byPlace.get(error.instancePath) ?? []), error])
  }
  for (const [instancePath, list] of byPlace) {
    const path = [...at, ...pathOf(instancePath)]
    const error = list[0]!
    const field = path.at(-1)
    const where = whereOf(data, path)
    const named = path.filter((p) => typeof p === 'string').at(-1)
    const prefix = named !== undefined && path.length > 2 ? `${String(named)}: ` : ''
    const allowed = list.filter((e) => e.keyword === 'const').map((e) => String((e.params as { allowedValue?: unknown }).allowedValue))
    if (error.keyword === 'boolean') {
      const upstreamName = path[0] === 'upstreams' && path.length === 2
      problems.add(path, where, upstreamName ? `invalid upstream name (must match ${UPSTREAM_NAME})` : `unknown field "${String(field)}"`)
    } else if (error.keyword === 'required') {
      const missing = (error.params as { requiredProperties?: string[] }).requiredProperties ?? []
      problems.add(path, where, `missing field ${missing.map((m) => `"${m}"`).join(', ')}`)
    } else if (allowed.length > 0) {
      problems.add(path, where, `${prefix}must be one of ${allowed.join(', ')}`)
    } else {
      problems.add(path, where, `${prefix}${error.message}`)
    }
  }
}

/** The upstream's URL with `${NAME}` resolved; problems name variables, never values. */
function resolveUrl (raw: string, vars: RoutesFileOptions['vars'], report: (problem: string) => void): string | null {
  let ok = true
  const resolved = raw.replace(INTERPOLATION, (_match, name: string) => {
    if (!URL_VARIABLE.test(name)) {
      ok = false
      report(`url: \${${name}} is not allowed (only environment variables whose names end in _URL)`)
      return ''
    }
    const value = vars[name]
    if (value === undefined || value === '') {
      ok = false
      report(`url: \${${name}} is not set`)
      return ''
    }
    return value
  })
  if (!ok) return null
  // Never the value: it may come from the environment, or carry a password.
  const shown = 'url'
  let url: URL
  try {
    url = new URL(resolved)
  } catch {
    report(`${shown} is not a valid URL`)
    return null
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') report(`${shown} must be http or https`)
  else if (url.username !== '' || url.password !== '') report(`${shown} must not carry userinfo (user:password@)`)
  else if (url.search !== '' || url.hash !== '' || resolved.includes('?') || resolved.includes('#')) report(
    `${shown} must not have a query or fragment`)
  else return url.pathname === '/' ? url.origin : url.origin + url.pathname.replace(/\/+$/, '')
  return null
}

function toProxyRoute (entry: RouteEntry): ProxyRoute {
  const route: ProxyRoute = {
    path: entry.path,
    upstream: entry.upstream,
    limit: entry.limit ?? (entry.public === true ? 'public' : 'api'),
    bodyLimit: entry.body_limit ?? DEFAULT_BODY_LIMIT
  }
  if (entry.exact === true) route.exact = true
  if (entry.public === true) route.public = true
  if (entry.methods !== undefined) route.methods = [...entry.methods]
  if (entry.roles !== undefined) route.roles = [...entry.roles]
  if (entry.scopes !== undefined) route.scopes = entry.scopes
  if (entry.password_check === true) route.passwordCheck = true
  if (entry.step_up_max_age !== undefined) route.stepUpMaxAge = entry.step_up_max_age
  if (entry.websocket === true) route.websocket = true
  return route
}

/** Checks that span fields, on a file the schema accepted. */
function ruleProblems (data: RoutesFile, opts: RoutesFileOptions, problems: Problems): Map<string, UpstreamSpec> {
  const upstreams = new Map<string, UpstreamSpec>()
  for (const [name, upstream] of Object.entries(data.upstreams)) {
    const url = resolveUrl(upstream.url, opts.vars, (p) => problems.add(['upstreams', name, 'url'], `upstream ${name}`, p))
    if (url === null) continue
    // `users` is the identity backend (login, live user state): it cannot be pointed elsewhere.
    const usersUrl = opts.vars.USERS_URL
    if (name === 'users' && usersUrl !== undefined && url !== usersUrl.replace(/\/+$/, '')) {
      problems.add(['upstreams', name, 'url'], 'upstream users', 'users is the identity backend: its url must be ${USERS_URL}')
      continue
    }
    upstreams.set(name, { name, url, timeoutMs: upstream.timeout_ms })
  }
  const firstLine = new Map<string, number | undefined>()
  data.routes.forEach((r, i) => {
    const at = ['routes', i]
    const where = `route ${r.path}`
    if (normalizePath(r.path) !== r.path || r.path === '/' || r.path.endsWith('/')) {
      problems.add([...at, 'path'], where,
        'path must be a normalized path without a trailing slash (no //, . or .. segments, no percent-encoding the gateway would decode)')
    }
    if (!(r.upstream in data.upstreams)) problems.add([...at, 'upstream'], where, `unknown upstream "${r.upstream}"`)
    if (r.public === true) {
      const conflicting = (['roles', 'scopes', 'step_up_max_age', 'password_check'] as const).filter((f) => r[f] !== undefined
        && r[f] !== false)
      for (const f of conflicting) problems.add([...at, f], where, `public together with ${f} (a public route forwards no identity)`)
      if (r.limit === 'api') problems.add([...at, 'limit'], where,
        'public together with limit: api (a public route has no user to count against)')
    }
    const key = `${r.exact === true ? 'exact ' : ''}${r.path}`
    if (firstLine.has(key)) {
      const line = firstLine.get(key)
      problems.add([...at, 'path'], where,
        `duplicate route (same path and exact as the route${line !== undefined ? ` at line ${line}` : ' before'})`)
    } else {
      firstLine.set(key, problems.lineOf([...at, 'path']))
    }
  })
  return upstreams
}

/** Parses and validates the text of a routes file; throws RoutesFileError. */
export function parseRoutesText (file: string, text: string, opts: RoutesFileOptions): RoutesSpec {
  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true })
  const problems = new Problems(file, doc, counter)
  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      const line = counter.linePos(err.pos[0]).line
      problems.lines.push(`${file}${line !== undefined ? `:${line}` : ''}: file: ${err.message.split('\n')[0] ?? 'syntax error'}`)
    }
    throw new RoutesFileError(problems.lines)
  }
  const data: unknown = doc.toJS()
  schemaProblems(data, problems)
  if (problems.lines.length > 0) throw new RoutesFileError(problems.lines)
  const valid = data as RoutesFile
  const upstreams = ruleProblems(valid, opts, problems)
  if (problems.lines.length > 0) throw new RoutesFileError(problems.lines)
  return {
    file,
    sha256: createHash('sha256').update(text).digest('hex'),
    upstreams,
    routes: valid.routes.map(toProxyRoute)
  }
}

/** Who may write the file: only its owner, and the owner only if it is this process's user or root. */
function permissionProblem (file: string): string | null {
  const st = statSync(file)
  if ((st.mode & 0o022) !== 0) return `${file}: file: writable by group or others (chmod go-w): write access to the routes file is ` +
    `admin access to the gateway`
  const uid = process.getuid?.()
  if (uid !== undefined && st.uid !== 0 && st.uid !== uid && (st.mode & 0o200) !== 0) {
    return `${file}: file: writable by its owner (uid ${st.uid}), who is neither this process's user nor root`
  }
  return null
}

/** Reads, checks and parses a routes file; throws RoutesFileError. */
export function readRoutesFileSync (file: string, opts: RoutesFileOptions): RoutesSpec {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
    if (opts.checkPermissions !== false) {
      const problem = permissionProblem(file)
      if (problem !== null) throw new RoutesFileError([problem])
    }
  } catch (err) {
    if (err instanceof RoutesFileError) throw err
    throw new RoutesFileError([`${file}: file: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`])
  }
  return parseRoutesText(file, text, opts)
}

/** Routes added, removed and made public from one table to the next (for the reload event). */
export function routesDiff (before: readonly ProxyRoute[],
  after: readonly ProxyRoute[]): { added: string[], removed: string[], made_public: string[] } {
  const key = (r: ProxyRoute): string => `${r.exact === true ? '=' : ''}${r.path}`
  const old = new Map(before.map((r) => [key(r), r]))
  const next = new Map(after.map((r) => [key(r), r]))
  return {
    added: [...next.keys()].filter((k) => !old.has(k)),
    removed: [...old.keys()].filter((k) => !next.has(k)),
    made_public: [...next.entries()].filter(([k, r]) => r.public === true && old.get(k)?.public !== true).map(([k]) => k)
  }
}
