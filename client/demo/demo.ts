/**
 * The demo page (/demo/): everything goes through the client served by the gateway. No inline
 * script or style (the page's CSP forbids both); the DOM is filled with textContent only.
 */
import {
  startAuthentication,
  startRegistration,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON
} from '@simplewebauthn/browser'
import { createAuthClient, AuthError, type AuthUser, type MfaProof } from '/client/auth-client.js'

interface Order { id: string, item: string, quantity: number, created_at: string }

function $<T extends HTMLElement> (id: string): T {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`#${id} missing`)
  return element as T
}

// DPoP: the tokens are bound to a key of this browser that cannot be exported (docs/dpop.md).
const auth = createAuthClient({ dpop: true })
const view = {
  status: $('status'),
  login: $('login-view'),
  app: $('app-view'),
  loginForm: $<HTMLFormElement>('login-form'),
  loginError: $('login-error'),
  username: $('username'),
  roles: $('roles'),
  lifetime: $('token-lifetime'),
  progress: $<HTMLProgressElement>('token-progress'),
  binding: $('token-binding'),
  orderForm: $<HTMLFormElement>('order-form'),
  ordersError: $('orders-error'),
  orders: $<HTMLTableElement>('orders'),
  ordersEmpty: $('orders-empty'),
  activity: $<HTMLOListElement>('activity'),
  feedStatus: $('feed-status'),
  feed: $<HTMLOListElement>('feed'),
  mfaForm: $<HTMLFormElement>('mfa-form'),
  mfaCode: $<HTMLInputElement>('mfa-code'),
  mfaPasskey: $<HTMLButtonElement>('mfa-passkey'),
  mfaError: $('mfa-error'),
  passkeyLogin: $<HTMLButtonElement>('passkey-login'),
  factorsStatus: $('factors-status'),
  factorsError: $('factors-error'),
  totpStart: $<HTMLButtonElement>('totp-start'),
  passkeyRegister: $<HTMLButtonElement>('passkey-register'),
  totpEnrol: $('totp-enrol'),
  totpQr: $('totp-qr'),
  totpSecret: $('totp-secret'),
  totpForm: $<HTMLFormElement>('totp-form'),
  totpCode: $<HTMLInputElement>('totp-code'),
  recovery: $('recovery'),
  recoveryCodes: $<HTMLOListElement>('recovery-codes')
}

/** The client's fetch, with a line per call in the activity list: the page sees every status it gets. */
async function call (method: string, path: string, body?: unknown): Promise<Response> {
  const init: RequestInit = { method }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers = { 'content-type': 'application/json' }
  }
  let status = 'network error'
  try {
    const response = await auth.fetch(path, init)
    status = String(response.status)
    return response
  } finally {
    const line = document.createElement('li')
    line.dataset.status = status
    line.dataset.ok = String(/^2\d\d$/.test(status))
    const time = document.createElement('span')
    time.className = 'time'
    time.textContent = new Date().toLocaleTimeString()
    const code = document.createElement('span')
    code.className = 'code'
    code.textContent = status
    line.append(time, `${method} ${path} → `, code)
    view.activity.prepend(line)
    while (view.activity.children.length > 50) view.activity.lastElementChild?.remove()
  }
}

function render (user: AuthUser | null): void {
  view.status.textContent = user === null ? 'Signed out.' : `Signed in as ${user.username}.`
  view.login.hidden = user !== null
  view.app.hidden = user === null
  if (user === null) {
    view.orders.tBodies[0]!.replaceChildren()
    view.ordersError.textContent = ''
    return
  }
  void showBinding()
  view.username.textContent = user.username
  view.roles.textContent = user.roles.length > 0 ? `(${user.roles.join(', ')})` : ''
  void loadOrders()
  void loadFactors()
  void openFeed()
}

/**
 * The live feed: one WebSocket per signed-in session. The page never closes it on sign-out: the
 * gateway does, so the feed shows it stopping (close 1008 `session_revoked`).
 */
let feed: WebSocket | null = null
async function openFeed (): Promise<void> {
  if (feed !== null && feed.readyState <= WebSocket.OPEN) return
  view.feedStatus.textContent = 'connecting…'
  let socket: WebSocket
  try {
    socket = await auth.websocket('/api/orders/ws')
  } catch (err) {
    view.feedStatus.textContent = err instanceof AuthError ? `refused (${err.code})` : 'the gateway cannot be reached'
    return
  }
  feed = socket
  let ticks = 0
  let timer: ReturnType<typeof setInterval> | undefined
  socket.addEventListener('open', () => {
    view.feedStatus.textContent = 'open'
    timer = setInterval(() => { socket.send(JSON.stringify({ tick: ++ticks })) }, 1000)
  })
  socket.addEventListener('message', (event) => {
    const line = document.createElement('li')
    line.textContent = String(event.data)
    view.feed.prepend(line)
    while (view.feed.children.length > 10) view.feed.lastElementChild?.remove()
  })
  socket.addEventListener('close', (event) => {
    clearInterval(timer)
    view.feedStatus.textContent = `closed (${event.code}${event.reason !== '' ? ` ${event.reason}` : ''})`
    view.feedStatus.dataset.code = String(event.code)
  })
}

function showOrders (orders: Order[]): void {
  const rows = orders.map((order) => {
    const row = document.createElement('tr')
    for (const text of [order.item, String(order.quantity), new Date(order.created_at).toLocaleString()]) {
      const cell = document.createElement('td')
      cell.textContent = text
      row.append(cell)
    }
    return row
  })
  view.orders.tBodies[0]!.replaceChildren(...rows)
  view.ordersEmpty.hidden = rows.length > 0
}

/** Which key the access token is bound to, and that the key's private half cannot be exported. */
async function showBinding (): Promise<void> {
  const jkt = auth.boundTo()
  const key = await auth.dpopKey()
  if (jkt === null) {
    view.binding.textContent = 'none (a bearer token)'
  } else {
    view.binding.textContent = `DPoP, key ` +
      `${jkt.slice(0, 12)}…${key !== null && jkt === key.thumbprint ? ' (this browser\'s key' +
        (key.extractable ? ')' : ', not extractable)') : ''}`
  }
  view.binding.dataset.jkt = jkt ?? ''
  view.binding.dataset.extractable = String(key?.extractable ?? '')
}

async function loadOrders (): Promise<void> {
  try {
    const response = await call('GET', '/api/orders')
    if (!response.ok) {
      view.ordersError.textContent = `Could not load orders (${response.status}).`
      return
    }
    const body = await response.json() as { orders?: Order[] } | Order[]
    showOrders(Array.isArray(body) ? body : body.orders ?? [])
    view.ordersError.textContent = ''
  } catch {
    view.ordersError.textContent = 'The gateway cannot be reached.'
  }
}

view.loginForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const form = new FormData(view.loginForm)
  const button = view.loginForm.querySelector('button')!
  button.disabled = true
  view.loginError.textContent = ''
  auth.login(String(form.get('username')), String(form.get('password')))
    .then(() => { view.loginForm.reset() })
    .catch((err: unknown) => {
      if (err instanceof AuthError && err.code === 'mfa_required' && err.mfaToken !== undefined) {
        askSecondFactor(err.mfaToken, err.methods ?? [])
        return
      }
      view.loginError.textContent = err instanceof AuthError && err.code === 'invalid_credentials'
        ? 'Wrong username or password.'
        : err instanceof AuthError ? `Sign-in refused: ${err.message}` : 'The gateway cannot be reached.'
    })
    .finally(() => { button.disabled = false })
})

view.orderForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const form = new FormData(view.orderForm)
  void call('POST', '/api/orders', { item: String(form.get('item')), quantity: Number(form.get('quantity')) })
    .then(async (response) => {
      if (!response.ok) {
        view.ordersError.textContent = `Could not create the order (${response.status}).`
        return
      }
      view.orderForm.reset()
      await loadOrders()
    })
    .catch(() => { view.ordersError.textContent = 'The gateway cannot be reached.' })
})

/*
 * Second factors (docs/mfa.md): the second step of a login (a code, a recovery code or a passkey),
 * a passkey sign-in, and enrolment of an authenticator app or a passkey. The WebAuthn ceremonies go
 * through @simplewebauthn/browser; the gateway's options are the JSON forms it takes as they are.
 */
let pendingMfa: string | null = null
/** What the gateway offers (the page is served with it): '' (no second factors), 'totp', 'totp webauthn'. */
const secondFactors = (document.body.dataset.secondFactors ?? '').split(' ').filter((f) => f !== '')
const passkeys = secondFactors.includes('webauthn')
$('factors-view').hidden = secondFactors.length === 0
$('passkey-login-row').hidden = !passkeys
view.passkeyRegister.hidden = !passkeys

function askSecondFactor (mfaToken: string, methods: string[]): void {
  pendingMfa = mfaToken
  view.loginForm.hidden = true
  view.mfaForm.hidden = false
  view.mfaPasskey.hidden = !passkeys || !methods.includes('webauthn')
  view.mfaError.textContent = ''
  view.mfaCode.focus()
}

function endSecondStep (): void {
  pendingMfa = null
  view.mfaForm.reset()
  view.mfaForm.hidden = true
  view.loginForm.hidden = false
  view.loginForm.reset()
}

function secondStepFailed (err: unknown): void {
  if (err instanceof AuthError && err.code === 'mfa_token_invalid') {
    endSecondStep()
    view.loginError.textContent = 'That sign-in expired or had too many tries; start again with the password.'
    return
  }
  view.mfaError.textContent = err instanceof AuthError
    ? (err.code === 'mfa_code_invalid' ? 'That did not match; try again.' : `Refused: ${err.message}`)
    : err instanceof Error && err.name === 'NotAllowedError' ? 'The passkey prompt was cancelled.' : 'The gateway cannot be reached.'
}

function completeSecondStep (proof: MfaProof): void {
  if (pendingMfa === null) return
  auth.verifyMfa(pendingMfa, proof).then(endSecondStep, secondStepFailed)
}

view.mfaForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const code = view.mfaCode.value.trim()
  if (code === '') return
  // Six digits are an authenticator code; anything else is a recovery code.
  completeSecondStep(/^\d{6}$/.test(code) ? { code } : { recovery_code: code })
})

view.mfaPasskey.addEventListener('click', () => {
  if (pendingMfa === null) return
  auth.passkeyOptions({ mfaToken: pendingMfa })
    // The gateway answers PublicKeyCredentialRequestOptionsJSON as @simplewebauthn/server makes it.
    .then(async (options) => await startAuthentication({ optionsJSON: options as PublicKeyCredentialRequestOptionsJSON }))
    .then((response) => { completeSecondStep({ webauthn: response }) }, secondStepFailed)
})

view.passkeyLogin.addEventListener('click', () => {
  view.loginError.textContent = ''
  view.passkeyLogin.disabled = true
  auth.passkeyOptions()
    .then(async (options) => await startAuthentication({ optionsJSON: options as PublicKeyCredentialRequestOptionsJSON }))
    .then(async (response) => await auth.loginWithPasskey(response))
    .then(() => { view.loginForm.reset() })
    .catch((err: unknown) => {
      view.loginError.textContent = err instanceof AuthError
        ? (err.code === 'passkey_invalid' ? 'That passkey was not accepted.' : `Sign-in refused: ${err.message}`)
        : err instanceof Error && err.name === 'NotAllowedError' ? 'The passkey prompt was cancelled.' : 'Passkeys cannot be used here.'
    })
    .finally(() => { view.passkeyLogin.disabled = false })
})

interface FactorView { id: string, type: string, status: string, remaining?: number }
const FACTOR_NAMES: Record<string, string> = { totp: 'authenticator app', webauthn: 'passkey', recovery_codes: 'recovery codes' }

async function loadFactors (): Promise<void> {
  if (secondFactors.length === 0) return
  const response = await call('GET', '/auth/mfa').catch(() => null)
  if (response === null || !response.ok) {
    view.factorsStatus.textContent = response?.status === 404
      ? 'Second factors are not enabled on this gateway.'
      : 'Could not load second factors.'
    return
  }
  const { factors } = await response.json() as { factors: FactorView[] }
  const active = factors.filter((f) => f.status === 'active')
  view.factorsStatus.textContent = active.length === 0 ? 'No second factor yet.' : 'Second factors: ' + active.map((f) =>
    f.type === 'recovery_codes' ? `recovery codes (${f.remaining ?? 0} left)` : FACTOR_NAMES[f.type] ?? f.type).join(', ')
  view.factorsStatus.dataset.types = active.map((f) => f.type).sort().join(',')
}

/** Codes shown once: the gateway keeps only their hashes. */
function showRecoveryCodes (codes: string[]): void {
  view.recoveryCodes.replaceChildren(...codes.map((code) => {
    const item = document.createElement('li')
    item.textContent = code
    return item
  }))
  view.recovery.hidden = false
}

async function factorRefusal (response: Response, what: string): Promise<string> {
  const body = await response.json().catch(() => ({})) as { code?: string }
  return body.code === 'insufficient_user_authentication'
    ? 'Adding another factor needs a sign-in that used your second factor: sign out and in again with it.'
    : `Could not ${what} (${response.status}${body.code !== undefined ? ` ${body.code}` : ''}).`
}

let enrolling: string | null = null
view.totpStart.addEventListener('click', () => {
  view.factorsError.textContent = ''
  void call('POST', '/auth/mfa/totp').then(async (response) => {
    if (!response.ok) { view.factorsError.textContent = await factorRefusal(response, 'start the enrolment'); return }
    const started = await response.json() as { factor_id: string, secret: string, qr_svg: string }
    enrolling = started.factor_id
    // The QR code is an SVG drawn by the gateway; parsed as SVG, never as HTML.
    const svg = new DOMParser().parseFromString(started.qr_svg, 'image/svg+xml').documentElement
    view.totpQr.replaceChildren(document.importNode(svg, true))
    view.totpSecret.textContent = started.secret
    view.recovery.hidden = true
    view.totpEnrol.hidden = false
    view.totpCode.focus()
  }, () => { view.factorsError.textContent = 'The gateway cannot be reached.' })
})

view.totpForm.addEventListener('submit', (event) => {
  event.preventDefault()
  if (enrolling === null) return
  void call('POST', '/auth/mfa/totp/confirm', { factor_id: enrolling, code: view.totpCode.value.trim() }).then(async (response) => {
    if (!response.ok) { view.factorsError.textContent = 'That code did not match; try the next one.'; return }
    const { recovery_codes: codes } = await response.json() as { recovery_codes: string[] }
    enrolling = null
    view.totpForm.reset()
    view.totpEnrol.hidden = true
    view.totpQr.replaceChildren()
    view.factorsError.textContent = ''
    showRecoveryCodes(codes)
    await loadFactors()
  }, () => { view.factorsError.textContent = 'The gateway cannot be reached.' })
})

view.passkeyRegister.addEventListener('click', () => {
  view.factorsError.textContent = ''
  void (async () => {
    const options = await call('POST', '/auth/mfa/webauthn/register/options')
    if (!options.ok) { view.factorsError.textContent = await factorRefusal(options, 'start adding a passkey'); return }
    // PublicKeyCredentialCreationOptionsJSON as @simplewebauthn/server makes it.
    const optionsJSON = await options.json() as PublicKeyCredentialCreationOptionsJSON
    const credential = await startRegistration({ optionsJSON })
    const verified = await call('POST', '/auth/mfa/webauthn/register/verify', credential)
    if (!verified.ok) { view.factorsError.textContent = await factorRefusal(verified, 'add the passkey'); return }
    const body = await verified.json() as { factor_id: string, recovery_codes?: string[] }
    if (body.recovery_codes !== undefined) showRecoveryCodes(body.recovery_codes)
    await loadFactors()
  })().catch((err: unknown) => {
    view.factorsError.textContent = err instanceof Error && err.name === 'NotAllowedError'
      ? 'The passkey prompt was cancelled.' : 'Passkeys cannot be used here.'
  })
})

$('reload-orders').addEventListener('click', () => { void loadOrders() })
$('logout').addEventListener('click', () => { void auth.logout() })
$('logout-all').addEventListener('click', () => { void auth.logoutAll() })

// The access token's remaining lifetime, ticking; it jumps back up when the client refreshes it.
let lifetime = 0
setInterval(() => {
  const expiresAt = auth.expiresAt()
  if (expiresAt === null) {
    view.lifetime.textContent = '–'
    view.progress.value = 0
    return
  }
  const left = Math.max(0, expiresAt - Date.now())
  lifetime = Math.max(lifetime, left)
  view.lifetime.textContent = `${(left / 1000).toFixed(1)} s`
  view.progress.value = lifetime > 0 ? left / lifetime : 0
}, 200)

auth.onChange(render)
// A reload stays signed in: the client restores the session from the HttpOnly cookie (onChange
// renders it); without one the page shows the sign-in form.
void auth.ready.then((user) => { if (user === null) render(null) })
