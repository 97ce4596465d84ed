/**
 * The security dashboard (docs/audit-and-dashboard.md). Plain DOM, no framework: every value from the API
 * is put in with textContent, never as HTML. All API calls go through auth.ts.
 */
import {
  startAuthentication,
  startRegistration,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON
} from '@simplewebauthn/browser'
import {
  AuthError,
  authFetch,
  login,
  loginWithPasskey,
  logout,
  onChange,
  passkeyOptions,
  ready,
  stepUp,
  stepUpChallenge,
  verifyMfa,
  type MfaProof,
  type SignedInUser
} from './auth.js'
import { drawChart, type Series } from './chart.js'

interface AuditEvent { id: string, time: string, event: string, user_id?: string, ip: string, request_id: string, [k: string]: unknown }
interface Block { id: string, kind: 'account' | 'ip', ip: string, username?: string, until: string, failures: number }
interface Client { client_id: string, name: string, scopes: string[], created_at: string, dpop_bound?: boolean }
interface Session { id: string, created_at: string, last_used_at: string, ip: string, user_agent: string }
interface Buckets { window: 'hour' | 'day', bucket_seconds: number, times: string[], series: Record<string, number[]> }
interface UserAnswer { user: { id: string, username: string, roles: string[], active: boolean }, sessions: Session[] }

/** The chart's lines: which event types each one adds up. */
const CHART_SERIES: Array<{ key: string, label: string, events: string[] }> = [
  { key: 'failed', label: 'Failed logins', events: ['login_failed'] },
  { key: 'reuse', label: 'Refresh reuse', events: ['token_reuse_detected'] },
  { key: 'blocks', label: 'Blocks', events: ['account_locked', 'ip_blocked'] },
  { key: 'success', label: 'Successful logins', events: ['login_succeeded'] }
]
const ID_LIKE = /^[A-Za-z0-9_-]{1,64}$/

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T

function h (tag: string, props: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElement {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') el.className = v
    else el.setAttribute(k, v)
  }
  for (const c of children) el.append(c)
  return el
}

const FEED_MAX = 200
const BAD = new Set(['login_failed', 'account_locked', 'ip_blocked', 'token_reuse_detected', 'access_denied', 'token_rejected'])
const WARN = new Set(['rate_limited', 'session_revoked', 'logout_all', 'legacy_endpoint_used', 'block_lifted', 'user_deactivated'])
const BLOCK_EVENTS = new Set(['account_locked', 'ip_blocked', 'block_lifted'])
const LEGACY_EVENT = 'legacy_endpoint_used'

class Forbidden extends Error {}
/** An admin call refused for want of a second factor in this session (ADMIN_MFA=required, docs/mfa.md). */
class NeedsFactor extends Error {}

/** Counts the dashboard's starts and stops: a stream loop of an earlier run ends instead of acting on this one. */
let run = 0
let streamAbort: AbortController | null = null
let timers: number[] = []
const seen = new Set<string>()

/**
 * GET/DELETE an admin API; 403 ends the dashboard, a 401 asking for a second factor leads to the
 * factor screen (the session stays), any other 401 signs out.
 */
async function api<T> (path: string, init: RequestInit = {}): Promise<T> {
  const res = await authFetch(path, init)
  if (res.status === 403) throw new Forbidden()
  if (stepUpChallenge(res) !== null) throw new NeedsFactor()
  if (res.status === 401) { await logout(); throw new Error('signed out') }
  if (!res.ok) {
    const body = await res.json().catch(() => ({})) as { detail?: string, title?: string }
    throw new Error(body.detail ?? body.title ?? `HTTP ${res.status}`)
  }
  return res.status === 204 ? (undefined as T) : await res.json() as T
}

/** Handles the refusals that end the dashboard view: true when err was one of them. */
function refused (err: unknown): boolean {
  if (err instanceof Forbidden) { showForbidden(); return true }
  if (err instanceof NeedsFactor) { void askForFactor(); return true }
  return false
}

function failed (err: unknown): void {
  refused(err)
}

const clock = (iso: string): string => new Date(iso).toLocaleTimeString([], { hour12: false })
const when = (iso: string): string => new Date(iso).toLocaleString([], { hour12: false })

function detailOf (e: AuditEvent): string {
  const parts: string[] = []
  if (e.user_id !== undefined) parts.push(`user ${e.user_id}`)
  parts.push(`ip ${e.ip}`)
  for (const [k, v] of Object.entries(e)) {
    if (['id', 'time', 'event', 'user_id', 'ip', 'request_id'].includes(k)) continue
    parts.push(`${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`)
  }
  return parts.join(' · ')
}

function eventItem (e: AuditEvent): HTMLElement {
  const cls = BAD.has(e.event) ? 'bad' : WARN.has(e.event) ? 'warn' : ''
  return h('li', { class: cls, 'data-event': e.event },
    h('time', { datetime: e.time, title: e.time }, clock(e.time)),
    h('span', { class: 'name' }, e.event),
    h('span', { class: 'detail' }, detailOf(e)))
}

function addToFeed (e: AuditEvent, atTop: boolean): void {
  if (seen.has(e.id)) return
  seen.add(e.id)
  const feed = $('feed')
  if (atTop) feed.prepend(eventItem(e))
  else feed.append(eventItem(e))
  while (feed.children.length > FEED_MAX) feed.lastElementChild?.remove()
}

function setFeedStatus (text: string, cls: '' | 'live' | 'down'): void {
  const s = $('feed-status')
  s.textContent = text
  s.className = `status ${cls}`
}

/** Server-Sent Events read with fetch, so the token goes in a header and never in the URL. */
async function followStream (mine: number): Promise<void> {
  let backoff = 1000
  while (mine === run) {
    streamAbort = new AbortController()
    try {
      const res = await authFetch('/admin/events/stream', { headers: { accept: 'text/event-stream' }, signal: streamAbort.signal })
      // A loop of a signed-out run must not sign out the session that followed it.
      if (mine !== run) return
      if (res.status === 403) throw new Forbidden()
      if (stepUpChallenge(res) !== null) throw new NeedsFactor()
      if (res.status === 401) { await logout(); return }
      if (!res.ok || res.body === null) throw new Error(`stream: HTTP ${res.status}`)
      setFeedStatus('live', 'live')
      backoff = 1000
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = message.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n')
          if (data !== '') onLiveEvent(JSON.parse(data) as AuditEvent)
        }
      }
    } catch (err) {
      if (mine !== run || refused(err)) return
    }
    if (mine !== run) return
    setFeedStatus('reconnecting', 'down')
    await new Promise((resolve) => setTimeout(resolve, backoff))
    backoff = Math.min(backoff * 2, 15_000)
  }
}

let countsTimer = 0
let blocksTimer = 0
function soon (which: 'counts' | 'blocks'): void {
  if (which === 'counts') { clearTimeout(countsTimer); countsTimer =
    window.setTimeout(() => { void loadCounts(); void loadChart() }, 1000) }
  else { clearTimeout(blocksTimer); blocksTimer = window.setTimeout(() => { void loadBlocks() }, 300) }
}

function onLiveEvent (e: AuditEvent): void {
  addToFeed(e, true)
  soon('counts')
  if (BLOCK_EVENTS.has(e.event)) soon('blocks')
  if (e.event === LEGACY_EVENT) addLegacy(e)
}

async function loadFeed (): Promise<void> {
  const { events } = await api<{ events: AuditEvent[] }>('/admin/events?limit=50')
  for (const e of events) addToFeed(e, false)
}

async function loadCounts (): Promise<void> {
  try {
    const { hour, day } = await api<{ hour: Record<string, number>, day: Record<string, number> }>('/admin/events/counts')
    const names = Object.keys(day).sort((a, b) => (day[b] ?? 0) - (day[a] ?? 0) || a.localeCompare(b))
    const rows = names.map((n) => h('tr', {}, h('td', {}, n), h('td', { class: 'num' }, String(hour[n] ?? 0)),
      h('td', { class: 'num' }, String(day[n] ?? 0))))
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: '3', class: 'empty' }, 'No events in the last day.')))
    $('counts').replaceChildren(...rows)
  } catch (err) { failed(err) }
}

let chartWindow: 'hour' | 'day' = 'hour'

async function loadChart (): Promise<void> {
  try {
    const b = await api<Buckets>(`/admin/events/buckets?window=${chartWindow}`)
    const series: Series[] = CHART_SERIES.map((s) => ({
      key: s.key,
      label: s.label,
      values: b.times.map((_, i) => s.events.reduce((sum, e) => sum + (b.series[e]?.[i] ?? 0), 0))
    }))
    const label = (iso: string): string => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false })
    const per = b.window === 'hour' ? 'per minute' : 'per hour'
    $('chart').replaceChildren(drawChart(b.times, series, label, `Events ${per}`))
    $('chart-legend').replaceChildren(...series.map((s) =>
      h('li', { class: s.key }, `${s.label} `, h('strong', {}, String(s.values.reduce((a, v) => a + v, 0))))))
    $('chart-note').textContent =
      `Events ${per}, ${b.window === 'hour' ? 'the last 60 minutes' : 'the last 24 hours'}; the rightmost point is the current, ` +
        `unfinished ${b.window === 'hour' ? 'minute' : 'hour'}.`
  } catch (err) { failed(err) }
}

function setChartWindow (w: 'hour' | 'day'): void {
  chartWindow = w
  for (const [id, on] of [['window-hour', w === 'hour'], ['window-day', w === 'day']] as const) {
    $(id).setAttribute('aria-pressed', String(on))
    $(id).className = on ? 'small' : 'small secondary'
  }
  void loadChart()
}

/** The audit trail filter as a query string (empty fields left out). */
function trailQuery (): URLSearchParams {
  const q = new URLSearchParams()
  const value = (id: string): string => $<HTMLInputElement>(id).value.trim()
  if (value('trail-event') !== '') q.set('event', value('trail-event'))
  if (value('trail-user') !== '') q.set('user_id', value('trail-user'))
  if (value('trail-ip') !== '') q.set('ip', value('trail-ip'))
  if (value('trail-since') !== '') q.set('since', new Date(value('trail-since')).toISOString())
  return q
}

async function filterTrail (): Promise<void> {
  const q = trailQuery()
  q.set('limit', '50')
  const status = $('trail-status')
  try {
    const { events, next_cursor: more } = await api<{ events: AuditEvent[], next_cursor: string | null }>(`/admin/events?${q.toString()}`)
    $('trail').replaceChildren(...events.map(eventItem))
    status.className = 'note'
    status.textContent = events.length === 0 ? 'No matching event.'
      : `${events.length} newest matching events${more === null ? '' : ' (export for all of them)'}.`
  } catch (err) {
    if (refused(err)) return
    status.className = 'note error'
    status.textContent = (err as Error).message
  }
}

/** Downloads every matching event as NDJSON (fetched with the token, saved from a blob URL). */
async function exportTrail (): Promise<void> {
  const status = $('trail-status')
  status.className = 'note'
  status.textContent = 'Exporting…'
  try {
    const res = await authFetch(`/admin/events/export?${trailQuery().toString()}`)
    if (res.status === 403) throw new Forbidden()
    if (stepUpChallenge(res) !== null) throw new NeedsFactor()
    if (!res.ok) {
      const body = await res.json().catch(() => ({})) as { detail?: string, title?: string }
      throw new Error(body.detail ?? body.title ?? `HTTP ${res.status}`)
    }
    const blob = await res.blob()
    const text = await blob.text()
    const lines = text === '' ? 0 : text.split('\n').filter((l) => l !== '').length
    const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'audit.ndjson'
    const url = URL.createObjectURL(blob)
    const a = h('a', { href: url, download: name })
    document.body.append(a)
    a.click()
    a.remove()
    setTimeout(() => { URL.revokeObjectURL(url) }, 10_000)
    status.textContent = `Exported ${lines} events to ${name}.`
  } catch (err) {
    if (refused(err)) return
    status.className = 'note error'
    status.textContent = (err as Error).message
  }
}

async function loadBlocks (): Promise<void> {
  try {
    const { blocks } = await api<{ blocks: Block[] }>('/admin/blocks')
    $('blocks-empty').hidden = blocks.length > 0
    $('blocks').replaceChildren(...blocks.map((b) => {
      const title = b.kind === 'account' ? `Lockout: ${b.username ?? '(unknown user)'} from ${b.ip}` : `IP block: ${b.ip}`
      const lift = h('button', { type: 'button', class: 'small danger' }, 'Lift')
      lift.addEventListener('click', () => {
        lift.setAttribute('disabled', '')
        api(`/admin/blocks/${encodeURIComponent(b.id)}`, { method: 'DELETE' }).then(loadBlocks, failed)
      })
      return h('li', { 'data-block': b.id },
        h('span', { class: 'what' }, title, h('small', {}, `${b.failures} failures · until ${when(b.until)}`)),
        lift)
    }))
  } catch (err) { failed(err) }
}

/** What the OAuth endpoints' own scopes allow (the route table's scopes name their routes). */
const OAUTH_SCOPE_HELP: Record<string, string> = {
  'tokens:introspect': 'introspect tokens (POST /oauth/introspect)',
  'token-exchange': 'act for a user: exchange their token (token exchange)'
}

function scopeChip (scope: string): HTMLElement {
  const help = OAUTH_SCOPE_HELP[scope]
  return h('span', { class: help !== undefined ? 'chip oauth' : 'chip', ...(help !== undefined ? { title: help } : {}) }, scope)
}

async function loadClients (): Promise<void> {
  const { clients } = await api<{ clients: Client[] }>('/admin/clients')
  $('clients-empty').hidden = clients.length > 0
  $('clients').replaceChildren(...clients.map((c) => {
    const revoke = h('button', { type: 'button', class: 'small danger' }, 'Revoke')
    revoke.addEventListener('click', () => {
      revoke.setAttribute('disabled', '')
      api(`/admin/clients/${encodeURIComponent(c.client_id)}`, { method: 'DELETE' }).then(loadClients, failed)
    })
    return h('li', { 'data-client': c.client_id },
      h(
        'span',
        { class: 'what' },
        c.name,
        h('small', {}, `${c.client_id} · since ${when(c.created_at)}`),
        h(
          'span',
          { class: 'chips' },
          ...c.scopes.map(scopeChip),
          ...(c.dpop_bound === true ? [h('span', { class: 'chip dpop', title: 'Tokens only with a DPoP proof' }, 'DPoP-bound')] : [])
        )
      ),
      revoke)
  }))
}

/** The scopes a client can be given: the metadata document's, which are what the gateway honours. */
async function loadScopeChoices (): Promise<void> {
  const res = await fetch('/.well-known/oauth-authorization-server')
  const { scopes_supported: scopes } = await res.json() as { scopes_supported: string[] }
  $('client-scopes').replaceChildren(h('legend', {}, 'Scopes'), ...scopes.map((scope) => {
    const box = h('input', { type: 'checkbox', name: 'scope', value: scope })
    return h('label', {}, box, scopeChip(scope), h('small', {}, OAUTH_SCOPE_HELP[scope] ?? ''))
  }))
}

async function registerClient (): Promise<void> {
  const error = $('client-error')
  const secret = $('client-secret')
  error.textContent = ''
  secret.hidden = true
  const scopes = [...document.querySelectorAll<HTMLInputElement>('#client-scopes input:checked')].map((b) => b.value)
  if (scopes.length === 0) { error.textContent = 'Pick at least one scope.'; return }
  try {
    const created = await api<Client & { client_secret: string }>('/admin/clients', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: $<HTMLInputElement>('client-name').value,
        scopes,
        dpop_bound: $<HTMLInputElement>('client-dpop').checked
      })
    })
    secret.textContent = `Client ${created.client_id} registered. Its secret, shown this once: ${created.client_secret}`
    secret.hidden = false
    $<HTMLFormElement>('client-form').reset()
    await loadClients()
  } catch (err) {
    if (!refused(err)) error.textContent = (err as Error).message
  }
}

function addLegacy (e: AuditEvent): void {
  $('legacy-empty').hidden = true
  $('legacy').prepend(eventItem(e))
}

async function loadLegacy (): Promise<void> {
  const { events } = await api<{ events: AuditEvent[] }>(`/admin/events?event=${LEGACY_EVENT}&limit=20`)
  $('legacy-empty').hidden = events.length > 0
  $('legacy').replaceChildren(...events.map(eventItem))
}

/**
 * The user of a username, else (for something that can be an id) of that id; null when neither.
 * An identity backend without the search by name answers 502 there: the id lookup still works.
 */
async function findUser (query: string): Promise<UserAnswer | null> {
  const attempts = [`/admin/users?username=${encodeURIComponent(query)}`]
  if (ID_LIKE.test(query)) attempts.push(`/admin/users/${encodeURIComponent(query)}/sessions`)
  let failure: Error | null = null
  for (const path of attempts) {
    const res = await authFetch(path)
    if (res.status === 403) throw new Forbidden()
    if (stepUpChallenge(res) !== null) throw new NeedsFactor()
    if (res.status === 404) continue
    if (!res.ok) { failure ??= new Error(`HTTP ${res.status}`); continue }
    return await res.json() as UserAnswer
  }
  if (failure !== null) throw failure
  return null
}

async function showUser (query: string): Promise<void> {
  const out = $('user-result')
  try {
    const found = await findUser(query)
    if (found === null) { out.replaceChildren(h('p', { class: 'empty' },
      `No user named ${query}${ID_LIKE.test(query) ? ' and none with that id' : ''}.`)); return }
    const { user: u, sessions } = found
    const revokeAll = h('button', { type: 'button', class: 'small danger' }, 'Revoke all')
    revokeAll.addEventListener('click', () => {
      api(`/admin/users/${encodeURIComponent(u.id)}/sessions`, { method: 'DELETE' }).then(() => showUser(u.username), failed)
    })
    const head = h('div', { class: 'user-head' },
      h('span', { class: 'what' },
        h('strong', {}, `${u.username}`),
        h('small', {}, `id ${u.id} · ${u.roles.join(', ') || 'no roles'} · `,
          h('span', { class: u.active ? 'state ok' : 'state bad' }, u.active ? 'active' : 'inactive'),
            ` · ${sessions.length} session${sessions.length === 1 ? '' : 's'}`)),
      ...(sessions.length > 0 ? [revokeAll] : []))
    const list = sessions.length === 0
      ? h('p', { class: 'empty' }, 'No active sessions.')
      : h('ul', { class: 'rows' }, ...sessions.map((s) => {
        const revoke = h('button', { type: 'button', class: 'small danger' }, 'Revoke')
        revoke.addEventListener('click', () => {
          revoke.setAttribute('disabled', '')
          api(`/admin/users/${encodeURIComponent(u.id)}/sessions/${encodeURIComponent(s.id)}`, { method: 'DELETE' }).then(() =>
            showUser(u.username), failed)
        })
        return h('li', { 'data-session': s.id },
          h('span', { class: 'what' }, `Session from ${s.ip}`,
            h('small', {}, `since ${when(s.created_at)} · last used ${when(s.last_used_at)} · ${s.user_agent || 'unknown client'}`)),
          revoke)
      }))
    out.replaceChildren(head, list, await factorsOf(u))
  } catch (err) {
    if (!refused(err)) out.replaceChildren(h('p', { class: 'error' }, (err as Error).message))
  }
}

/** The pending TOTP enrolment of the signed-in admin. */
let enrolling: string | null = null

/** Starts a TOTP enrolment: the QR code (an SVG drawn by the gateway) and the key. */
async function startTotp (): Promise<void> {
  $('totp-error').textContent = ''
  const res = await authFetch('/auth/mfa/totp', { method: 'POST' })
  if (!res.ok) {
    const body = await res.json().catch(() => ({})) as { detail?: string, title?: string }
    $('totp-error').textContent = body.detail ?? body.title ?? `HTTP ${res.status}`
    return
  }
  const started = await res.json() as { factor_id: string, secret: string, qr_svg: string }
  enrolling = started.factor_id
  // Parsed as an SVG document, never as HTML: no script can come with it.
  const svg = new DOMParser().parseFromString(started.qr_svg, 'image/svg+xml').documentElement
  svg.setAttribute('width', '200')
  svg.setAttribute('height', '200')
  $('totp-qr').replaceChildren(document.importNode(svg, true))
  $('totp-secret').textContent = started.secret
  $('totp-enrol').hidden = false
  $('recovery').hidden = true
}

async function confirmTotp (): Promise<void> {
  $('totp-error').textContent = ''
  const res = await authFetch('/auth/mfa/totp/confirm', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ factor_id: enrolling, code: $<HTMLInputElement>('totp-code').value.trim() })
  })
  if (!res.ok) { $('totp-error').textContent = 'That code did not match; try the next one.'; return }
  const { recovery_codes: codes } = await res.json() as { recovery_codes: string[] }
  enrolling = null
  $<HTMLInputElement>('totp-code').value = ''
  $('totp-enrol').hidden = true
  $('totp-qr').replaceChildren()
  $('recovery-codes').replaceChildren(...codes.map((c) => h('li', {}, c)))
  $('recovery').hidden = false
  enrolled(false)
}

/**
 * Adds a passkey to the signed-in admin (docs/mfa.md#passkeys): the gateway's creation options
 * through @simplewebauthn/browser and back. A first factor comes with recovery codes, shown once.
 */
async function addPasskey (): Promise<void> {
  $('totp-error').textContent = ''
  $('passkey-added').hidden = true
  const options = await authFetch('/auth/mfa/webauthn/register/options', { method: 'POST' })
  if (!options.ok) {
    const body = await options.json().catch(() => ({})) as { detail?: string, title?: string }
    $('totp-error').textContent = body.detail ?? body.title ?? `HTTP ${options.status}`
    return
  }
  // PublicKeyCredentialCreationOptionsJSON as @simplewebauthn/server makes it.
  const optionsJSON = await options.json() as PublicKeyCredentialCreationOptionsJSON
  const credential = await startRegistration({ optionsJSON })
  const res = await authFetch('/auth/mfa/webauthn/register/verify', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(credential)
  })
  if (!res.ok) { $('totp-error').textContent = 'The passkey was not accepted.'; return }
  const body = await res.json() as { recovery_codes?: string[] }
  if (body.recovery_codes !== undefined) {
    $('recovery-codes').replaceChildren(...body.recovery_codes.map((c) => h('li', {}, c)))
    $('recovery').hidden = false
  }
  $('passkey-added').hidden = false
  enrolled(true)
}

/** An assertion for options of the gateway (PublicKeyCredentialRequestOptionsJSON, as the library makes them). */
const assertion = async (options: object): Promise<object> =>
  await startAuthentication({ optionsJSON: options as PublicKeyCredentialRequestOptionsJSON })

const passkeyError = (err: unknown): string => err instanceof AuthError ? err.message
  : err instanceof Error && err.name === 'NotAllowedError' ? 'The passkey prompt was cancelled.' : 'Passkeys cannot be used here.'

/** The mfa_token of a login waiting for its second factor. */
let pendingMfa: string | null = null

/** A typed code: six digits are a TOTP code, anything else a recovery code. */
const proofOf = (code: string): MfaProof => /^\d{6}$/.test(code) ? { code } : { recovery_code: code }

/**
 * A user's second factors and the reset (docs/mfa.md). The reset needs the admin's own second
 * factor of the last 5 minutes: on the step-up challenge the admin is asked for a code and it is
 * sent again once. Without second factors at the gateway (404) nothing is shown.
 */
async function factorsOf (u: UserAnswer['user']): Promise<HTMLElement> {
  const path = `/admin/users/${encodeURIComponent(u.id)}/factors`
  const res = await authFetch(path)
  if (!res.ok) return h('p', { hidden: '' })
  const { factors } = await res.json() as { factors: Array<{ id: string, type: string, status: string, remaining?: number }> }
  const active = factors.filter((f) => f.status === 'active')
  const text = active.length === 0 ? 'No second factor.' : `Second factors: ` +
    `${active.map((f) => f.type === 'recovery_codes' ? `recovery codes (${f.remaining ?? 0} left)` : f.type).join(', ')}`
  const note = h('p', { class: 'factors' }, text)
  if (factors.length === 0) return note
  const reset = h('button', { type: 'button', class: 'small danger' }, 'Reset second factors')
  reset.addEventListener('click', () => {
    const remove = async (): Promise<void> => {
      let answer = await authFetch(path, { method: 'DELETE' })
      if (stepUpChallenge(answer) !== null) {
        const code = window.prompt('Your own authenticator code (or a recovery code) is needed to reset factors:')
        if (code === null || code.trim() === '') return
        await stepUp(proofOf(code.trim()))
        answer = await authFetch(path, { method: 'DELETE' })
      }
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`)
      await showUser(u.username)
    }
    remove().catch((err: Error) => { note.textContent = `Reset failed: ${err.message}` })
  })
  return h('div', { class: 'user-head' }, note, reset)
}

function show (view: 'sign-in' | 'forbidden' | 'factor' | 'dashboard'): void {
  $('sign-in').hidden = view !== 'sign-in'
  $('forbidden').hidden = view !== 'forbidden'
  $('factor').hidden = view !== 'factor'
  $('dashboard').hidden = view !== 'dashboard'
  // The "Your second factor" panel lives in the dashboard; the factor screen borrows it.
  if (view !== 'factor') $('mfa-home').append($('mfa-panel'))
}

/** True while the factor screen is up (the dashboard waits for a second factor). */
let askingFactor = false

/**
 * The session is signed in but the admin APIs want a second factor (ADMIN_MFA=required). The
 * session stays: an admin with a factor is asked for it (a step-up, docs/mfa.md#step-up-rfc-9470);
 * an admin without one gets the enrolment panel, then confirms the new factor once to continue.
 */
async function askForFactor (): Promise<void> {
  if (askingFactor) return
  askingFactor = true
  stop()
  $('step-up-error').textContent = ''
  $('step-up-form').hidden = true
  $('step-up-passkey').hidden = true
  $('factor-text').textContent = ''
  show('factor')
  let factors: Array<{ type: string, status: string }> = []
  try {
    const res = await authFetch('/auth/mfa')
    if (res.ok) ({ factors } = await res.json() as { factors: typeof factors })
  } catch (err) {
    $('step-up-error').textContent = (err as Error).message
  }
  const active = factors.filter((f) => f.status === 'active' && f.type !== 'recovery_codes')
  if (active.length > 0) {
    askForProof('The admin pages need a second factor in this session. Enter the code from your authenticator app ' +
      '(or a recovery code).', active.some((f) => f.type === 'webauthn'))
    return
  }
  $('factor-text').textContent = 'The admin pages need a second factor, and your account has none yet. Set up an ' +
    'authenticator app (or add a passkey) here, then confirm it once to continue.'
  $('factor-slot').append($('mfa-panel'))
}

function askForProof (text: string, passkey: boolean): void {
  $('factor-text').textContent = text
  $('step-up-form').hidden = false
  $('step-up-passkey').hidden = !passkey || document.body.dataset.passkeys !== 'on'
  $<HTMLInputElement>('step-up-code').focus()
}

/** A factor was just enrolled: on the factor screen, it now serves for the step-up. */
function enrolled (passkey: boolean): void {
  if (!askingFactor) return
  askForProof(passkey ? 'Passkey added. Use it once more to continue.'
    : 'Authenticator app set up. Enter the next code it shows (not the one just used) to continue.', passkey)
}

/** The step-up passed: the access token now carries the factor, the dashboard starts again. */
function steppedUp (): void {
  $<HTMLInputElement>('step-up-code').value = ''
  askingFactor = false
  void start()
}

function stop (): void {
  run++
  streamAbort?.abort()
  for (const t of timers) clearInterval(t)
  timers = []
}

function showForbidden (): void {
  stop()
  show('forbidden')
}

async function start (): Promise<void> {
  const mine = ++run
  seen.clear()
  $('feed').replaceChildren()
  setFeedStatus('connecting', '')
  show('dashboard')
  try {
    await Promise.all([loadFeed(), loadCounts(), loadChart(), loadBlocks(), loadLegacy(), loadClients(), loadScopeChoices()])
  } catch (err) {
    failed(err)
  }
  if (mine !== run) return
  void followStream(mine)
  timers.push(window.setInterval(() => { void loadCounts(); void loadChart(); void loadBlocks() }, 30_000))
}

function signedIn (u: SignedInUser | null): void {
  $('who').hidden = u === null
  $('who-name').textContent = u === null ? '' : `${u.username}`
  if (u === null) { stop(); askingFactor = false; show('sign-in') } else void start()
}

function init (): void {
  $('sign-in-form').addEventListener('submit', (ev) => {
    ev.preventDefault()
    const error = $('sign-in-error')
    error.textContent = ''
    const code = $<HTMLInputElement>('mfa-code').value.trim()
    const step = pendingMfa !== null && code !== ''
      ? verifyMfa(pendingMfa, proofOf(code))
      : login($<HTMLInputElement>('username').value, $<HTMLInputElement>('password').value)
    step
      .then(() => {
        $<HTMLInputElement>('password').value = ''; $<HTMLInputElement>('mfa-code').value = ''
        pendingMfa = null; $('mfa-code-row').hidden = true; $('mfa-passkey').hidden = true
      })
      .catch((err: Error) => {
        // A user with a second factor: the password was right, a code comes next.
        if (err instanceof AuthError && err.code === 'mfa_required' && err.mfaToken !== undefined) {
          pendingMfa = err.mfaToken
          $('mfa-code-row').hidden = false
          $('mfa-passkey').hidden = document.body.dataset.passkeys !== 'on' || !(err.methods ?? []).includes('webauthn')
          $<HTMLInputElement>('mfa-code').focus()
          error.textContent = 'Enter the code from your authenticator app (or a recovery code).'
          return
        }
        if (err instanceof AuthError && err.code === 'mfa_token_invalid') { pendingMfa = null; $('mfa-code-row').hidden = true }
        error.textContent = err.message
      })
  })
  $('mfa-passkey').addEventListener('click', () => {
    const token = pendingMfa
    if (token === null) return
    passkeyOptions({ mfaToken: token })
      .then(assertion)
      .then(async (response) => { await verifyMfa(token, { webauthn: response }) })
      .then(() => {
        pendingMfa = null; $('mfa-code-row').hidden = true; $('mfa-passkey').hidden = true
        $<HTMLInputElement>('password').value = ''
      })
      .catch((err: unknown) => { $('sign-in-error').textContent = passkeyError(err) })
  })
  $('passkey-sign-in').addEventListener('click', () => {
    $('sign-in-error').textContent = ''
    passkeyOptions()
      .then(assertion)
      .then(async (response) => await loginWithPasskey(response))
      .catch((err: unknown) => { $('sign-in-error').textContent = passkeyError(err) })
  })
  // Passkey buttons only when the gateway has passkeys (the page is served with data-passkeys).
  const passkeys = document.body.dataset.passkeys === 'on'
  $('passkey-add').hidden = !passkeys
  $('passkey-sign-in').hidden = !passkeys
  $('passkey-add').addEventListener('click', () => {
    addPasskey().catch((err: unknown) => { $('totp-error').textContent = passkeyError(err) })
  })
  $('sign-out').addEventListener('click', () => { void logout() })
  $('step-up-form').addEventListener('submit', (ev) => {
    ev.preventDefault()
    $('step-up-error').textContent = ''
    stepUp(proofOf($<HTMLInputElement>('step-up-code').value.trim()))
      .then(steppedUp)
      .catch((err: Error) => { $('step-up-error').textContent = err.message })
  })
  $('step-up-passkey').addEventListener('click', () => {
    $('step-up-error').textContent = ''
    // Options of {} serve a step-up (docs/mfa.md#passkeys).
    authFetch('/auth/webauthn/options', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      .then(async (res) => {
        if (!res.ok) throw new Error(`HTTP ${res.status}`)
        return await assertion(await res.json() as object)
      })
      .then(async (response) => { await stepUp({ webauthn: response }) })
      .then(steppedUp)
      .catch((err: unknown) => { $('step-up-error').textContent = passkeyError(err) })
  })
  $('totp-start').addEventListener('click', () => { void startTotp() })
  $('totp-confirm').addEventListener('submit', (ev) => {
    ev.preventDefault()
    void confirmTotp()
  })
  $('client-form').addEventListener('submit', (ev) => {
    ev.preventDefault()
    void registerClient()
  })
  $('user-search').addEventListener('submit', (ev) => {
    ev.preventDefault()
    void showUser($<HTMLInputElement>('user-id').value.trim())
  })
  $('window-hour').addEventListener('click', () => { setChartWindow('hour') })
  $('window-day').addEventListener('click', () => { setChartWindow('day') })
  $('trail-filter').addEventListener('submit', (ev) => {
    ev.preventDefault()
    void filterTrail()
  })
  $('trail-export').addEventListener('click', () => { void exportTrail() })
  onChange(signedIn)
  // A refresh cookie from an earlier visit signs in without the form.
  void ready.then((u) => { if (u === null) show('sign-in') })
}

init()
