/**
 * Live reload of the routes file: on SIGHUP (src/server.ts) and when the file changes. The
 * directory is watched, not the file: Kubernetes updates a ConfigMap volume by swapping its
 * `..data` symlink, which a watch on the file itself (the old inode) never sees.
 *
 * A reload reads and validates the whole file first: an invalid one keeps the current table, logs
 * the lines `npm run routes:check` would print and counts `result="failure"`. A valid one is
 * swapped in at once (requests already admitted finish on their route) and is the security event
 * `routes_reloaded`: the file's SHA-256 and the routes added, removed and made public, in the log
 * and the audit trail.
 */
import { randomUUID } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { readRoutesFileSync, routesDiff, RoutesFileError, type RoutesSpec } from './routes-file.js'

/** Changes arrive as bursts of events (a symlink swap is several): one reload after the burst. */
const SETTLE_MS = 200

export type ReloadTrigger = 'signal' | 'file'
export type ReloadResult = { result: 'success' | 'failure' | 'unchanged' | 'no_file', problems: readonly string[] }

export interface RoutesControl {
  /** Reads the routes file again and applies it when it is valid and changed. Never rejects. */
  reload: (trigger: ReloadTrigger) => Promise<ReloadResult>
  /** The table in use. */
  current: () => RoutesSpec
  /** Upstream pools open (what the leak test watches). */
  pools: () => { live: number, retiring: number, closing: number }
}

export interface ReloaderOptions {
  file: string | undefined
  vars: Readonly<Record<string, string | undefined>>
  current: () => RoutesSpec
  swap: (spec: RoutesSpec) => void
  counted: (result: 'success' | 'failure') => void
  pools: () => { live: number, retiring: number, closing: number }
  /** Problems of a valid file that the running gateway cannot apply (checked at start-up too). */
  refuse?: (spec: RoutesSpec) => readonly string[]
}

export function routesReloader (fastify: FastifyInstance, opts: ReloaderOptions): RoutesControl {
  const reloadNow = (trigger: ReloadTrigger): ReloadResult => {
    if (opts.file === undefined) {
      fastify.log.warn({ trigger }, 'routes reload asked for, but ROUTES_FILE is not set (the demo table stays)')
      return { result: 'no_file', problems: [] }
    }
    let spec: RoutesSpec
    try {
      spec = readRoutesFileSync(opts.file, { vars: opts.vars })
      const refused = opts.refuse?.(spec) ?? []
      if (refused.length > 0) throw new RoutesFileError(refused)
    } catch (err) {
      const problems = err instanceof RoutesFileError ? err.problems : [`${opts.file}: file: ${String(err)}`]
      for (const line of problems) fastify.log.error({ trigger, problem: line }, `routes file refused, the current table stays: ${line}`)
      opts.counted('failure')
      return { result: 'failure', problems }
    }
    const before = opts.current()
    if (spec.sha256 === before.sha256) return { result: 'unchanged', problems: [] }
    opts.swap(spec)
    opts.counted('success')
    const diff = routesDiff(before.routes, spec.routes)
    // No client behind a reload: the change came from this machine (a signal or the file), and a
    // fresh id ties the log line to the audit entry.
    const fields = { ip: '127.0.0.1', request_id: randomUUID(), trigger, file: spec.file, sha256: spec.sha256, ...diff }
    fastify.log.info({ event: 'routes_reloaded', ...fields }, 'routes_reloaded')
    fastify.metrics.securityEvents.inc({ event: 'routes_reloaded' })
    void fastify.audit.append('routes_reloaded', fields)
    return { result: 'success', problems: [] }
  }
  return {
    // Synchronous inside: two reloads never interleave.
    reload: async (trigger) => reloadNow(trigger),
    current: opts.current,
    pools: opts.pools
  }
}

/** Calls `changed` (debounced) when anything in the file's directory changes. */
export function watchRoutesFile (file: string, log: FastifyBaseLogger, changed: () => void): { close: () => void } {
  let timer: NodeJS.Timeout | undefined
  let watcher: FSWatcher | undefined
  const name = basename(file)
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, entry) => {
      // A ConfigMap swaps `..data`; an editor renames a temporary file over ours.
      if (entry !== null && entry !== name && !entry.startsWith('..')) return
      clearTimeout(timer)
      timer = setTimeout(changed, SETTLE_MS)
      timer.unref()
    })
    watcher.on('error', (err) => log.error({ err }, 'watching the routes file failed: reload with SIGHUP'))
  } catch (err) {
    log.error({ err }, 'watching the routes file failed: reload with SIGHUP')
  }
  return {
    close: () => {
      clearTimeout(timer)
      watcher?.close()
    }
  }
}
