#!/usr/bin/env node
// Supply-chain gate of `make test` (scripts/supply-chain/audit.mjs):
//  1. the lock file pins every package: an exact version and an integrity hash for each entry;
//  2. `npm audit --omit=dev`: no high or critical advisory in a production dependency, except those
//     recorded in audit-exceptions.json with a reason and an expiry date.
// When the advisory service cannot be reached (a proxy that refuses it), the audit is reported as
// not done; it fails only with AUDIT_REQUIRED=1 (set it in CI that reaches the registry).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const root = new URL('../../', import.meta.url)
let failed = false
const fail = (/** @type {string} */ msg) => { failed = true; console.error(`supply chain: ${msg}`) }

// 1. exact, verifiable versions
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8'))
let pinned = 0
for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  if (path === '' || entry.link === true) continue
  if (!/^\d+\.\d+\.\d+(?:[-+][\w.-]+)?$/.test(entry.version ?? '')) fail(`${path}: no exact version in package-lock.json`)
  else if (typeof entry.integrity !== 'string' || !entry.integrity.startsWith('sha512-')) fail(
    `${path}: no sha512 integrity in package-lock.json`)
  else pinned++
}
if (lock.lockfileVersion < 2) fail('package-lock.json must be lockfileVersion 2 or 3')

// 2. npm audit
const exceptionsFile = JSON.parse(readFileSync(new URL('audit-exceptions.json', root), 'utf8'))
const today = new Date().toISOString().slice(0, 10)
const accepted = new Map()
for (const e of exceptionsFile.exceptions ?? []) {
  if (!e.id || !e.reason || !e.until) { fail(`audit-exceptions.json: entry ${JSON.stringify(e)} needs id, reason and until`); continue }
  if (e.until < today) { fail(`audit-exceptions.json: the exception for ${e.id} expired on ${e.until}`); continue }
  accepted.set(e.id, e)
}

let report
try {
  report = execFileSync('npm', ['audit', '--omit=dev', '--json'],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 })
} catch (err) {
  report = /** @type {{ stdout?: string }} */ (err).stdout ?? '' // npm audit exits 1 when it finds anything
}
let parsed
try { parsed = JSON.parse(report) } catch { parsed = undefined }
if (parsed === undefined || parsed.vulnerabilities === undefined) {
  const why = parsed?.message ?? parsed?.error?.summary ?? 'no answer'
  const msg = `npm audit could not reach the advisory service (${why})`
  if (process.env.AUDIT_REQUIRED === '1') fail(msg)
  else console.log(`supply chain: ${msg}; audit NOT done (AUDIT_REQUIRED=1 makes this fatal)`)
} else {
  const blocking = []
  for (const [name, v] of Object.entries(parsed.vulnerabilities)) {
    if (v.severity !== 'high' && v.severity !== 'critical') continue
    /** @type {string[]} */
    const ids = (v.via ?? []).filter((/** @type {unknown} */ x) => typeof x === 'object')
      .map((/** @type {{ url?: string, source?: unknown }} */ x) => x.url?.split('/').pop() ?? String(x.source))
    const open = ids.length === 0 ? [name] : ids.filter((id) => !accepted.has(id) && !accepted.has(`https://github.com/advisories/${id}`))
    if (open.length > 0) blocking.push(`${name} (${v.severity}): ${open.join(', ')}`)
  }
  for (const b of blocking) fail(`advisory in a production dependency: ${b}`)
  const m = parsed.metadata?.vulnerabilities ?? {}
  console.log(
    `supply chain: npm audit --omit=dev: ${m.critical ?? 0} critical, ${m.high ?? 0} high, ${m.moderate ?? 0} moderate, ${m.low ?? 0} ` +
      `low; ${accepted.size} accepted exception(s)`)
}
console.log(`supply chain: ${pinned} locked packages, each with an exact version and a sha512 integrity`)
process.exit(failed ? 1 : 0)
