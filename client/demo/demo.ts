/**
 * The demo page (/demo/): everything goes through the client served by the gateway. No inline
 * script or style (the page's CSP forbids both); the DOM is filled with textContent only.
 */
import { createAuthClient, AuthError, type AuthUser } from '/client/auth-client.js'

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
  feed: $<HTMLOListElement>('feed')
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
