// `make run`: waits for the gateway, signs in as the demo admin and registers the orders service's
// machine client (scope token-exchange). Prints "<client_id> <client_secret>" on stdout.
// Usage: node scripts/register-orders-client.mjs http://127.0.0.1:8080
const base = process.argv[2]
if (base === undefined) throw new Error('usage: node scripts/register-orders-client.mjs <gateway URL>')
const deadline = Date.now() + 30_000

async function ready () {
  for (;;) {
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) return
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`the gateway at ${base} did not become ready`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/**
 * @param {string} path
 * @param {RequestInit & { headers?: Record<string, string> }} init
 * @returns {Promise<any>} the JSON answer
 */
async function json (path, init) {
  const res = await fetch(base + path, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
  return await res.json()
}

try {
  await ready()
  const admin = await json('/auth/login', { method: 'POST', body: JSON.stringify({ username: 'admin', password: 'admin-password' }) })
  const client = await json('/admin/clients', {
    method: 'POST',
    headers: { authorization: `Bearer ${admin.access}` },
    body: JSON.stringify({ name: 'orders service (dev stack)', scopes: ['token-exchange'] })
  })
  await fetch(`${base}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${admin.access}` } })
  process.stdout.write(`${client.client_id} ${client.client_secret}\n`)
} catch (err) {
  process.stderr.write(`registering the orders client failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}
