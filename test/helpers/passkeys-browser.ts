/**
 * Passkeys in Chromium for the page tests: the DevTools virtual authenticator, and an origin a
 * passkey can belong to. An RP ID must be a domain, not 127.0.0.1, so the page is opened as
 * http://localhost:<port> through a TCP forwarder that listens before the gateway is built (its
 * port goes into WEBAUTHN_ORIGINS) and is pointed at the gateway once it listens.
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import type { BrowserContext, CDPSession, Page } from 'playwright-core'

interface Teardown { teardown: (fn: () => unknown) => void }

export async function localhostForwarder (t: Teardown): Promise<{ port: number, origin: string, target: (port: number) => void }> {
  let targetPort = 0
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => { client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { port, origin: `http://localhost:${port}`, target: (p) => { targetPort = p } }
}

/** A CTAP2 platform authenticator with resident keys whose user is always verified and present. */
export async function virtualAuthenticator (context: BrowserContext, page: Page): Promise<{ cdp: CDPSession, authenticatorId: string }> {
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable', { enableUI: false })
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true
    }
  })
  return { cdp, authenticatorId }
}
