/**
 * DPoP (RFC 9449) for the auth client: a P-256 key made with WebCrypto whose private half can
 * never be exported, kept in IndexedDB where there is one (so every tab of the origin, and a
 * reload, proves with the same key) and in memory elsewhere (Node); a proof per call; the
 * gateway's nonce (`DPoP-Nonce`) remembered and used.
 */

const DB_NAME = 'auth-client-dpop'
const STORE = 'keys'

type Jwk = { kty: string, crv: string, x: string, y: string }
type WebKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>
interface KeyPair { privateKey: WebKey, publicKey: WebKey }

// The little of IndexedDB used here, typed locally: the client also compiles for Node (no DOM types).
interface IdbRequest<T> { result: T, error: unknown, onsuccess: (() => void) | null, onerror: (() => void) | null }
interface IdbStore { get: (key: string) => IdbRequest<unknown>, put: (value: unknown, key: string) => IdbRequest<unknown> }
interface IdbDatabase {
  transaction: (store: string, mode: 'readonly' | 'readwrite') => { objectStore: (name: string) => IdbStore }
  createObjectStore: (name: string) => unknown
  close: () => void
}
interface IdbOpen extends IdbRequest<IdbDatabase> { onupgradeneeded: (() => void) | null }
interface IdbFactory { open: (name: string, version: number) => IdbOpen }

function base64Url (bytes: Uint8Array): string {
  let text = ''
  for (const b of bytes) text += String.fromCharCode(b)
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

const utf8 = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text)

async function sha256 (text: string): Promise<string> {
  return base64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(text))))
}

function newKeyPair (): Promise<KeyPair> {
  // extractable false: the private key cannot leave WebCrypto (the public one always can).
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
}

function request<T> (req: IdbRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(new Error('IndexedDB request failed', { cause: req.error }))
  })
}

function isKeyPair (value: unknown): value is KeyPair {
  return typeof value === 'object' && value !== null && 'privateKey' in value && 'publicKey' in value
}

/** The origin's key pair named `name`: the one stored, or `fresh` stored now (the first tab to write wins). */
async function storedKeyPair (idb: IdbFactory, name: string): Promise<KeyPair> {
  const open = idb.open(DB_NAME, 1)
  open.onupgradeneeded = () => { open.result.createObjectStore(STORE) }
  const db = await request(open)
  try {
    const existing = await request(db.transaction(STORE, 'readonly').objectStore(STORE).get(name))
    if (isKeyPair(existing)) return existing
    const fresh = await newKeyPair()
    // Another tab may have stored one meanwhile: read and write in one transaction, keep theirs.
    const tx = db.transaction(STORE, 'readwrite')
    const store = tx.objectStore(STORE)
    const raced = await request(store.get(name))
    if (isKeyPair(raced)) return raced
    await request(store.put(fresh, name))
    return fresh
  } finally {
    db.close()
  }
}

export class DpopProver {
  readonly #keys: Promise<{ pair: KeyPair, jwk: Jwk }>
  #nonce: string | null = null

  constructor (name: string) {
    const idb = (globalThis as { indexedDB?: IdbFactory }).indexedDB
    this.#keys = (async () => {
      const pair = idb !== undefined ? await storedKeyPair(idb, name).catch(newKeyPair) : await newKeyPair()
      const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey) as Jwk
      return { pair, jwk: { kty, crv, x, y } }
    })()
  }

  /** The key's RFC 7638 thumbprint: what a token bound to it names in `cnf.jkt`. */
  async thumbprint (): Promise<string> {
    const { jwk } = await this.#keys
    return await sha256(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
  }

  /** Whether the private key can be exported (it never can; the demo page shows it). */
  async extractable (): Promise<boolean> {
    return (await this.#keys).pair.privateKey.extractable
  }

  /** A proof for one call: `url` as the call addresses it (query and fragment dropped), `token` the access token sent with it. */
  async proof (method: string, url: string, token?: string): Promise<string> {
    const { pair, jwk } = await this.#keys
    const target = new URL(url)
    const header = { typ: 'dpop+jwt', alg: 'ES256', jwk }
    const payload: Record<string, unknown> = {
      htm: method.toUpperCase(),
      htu: `${target.origin}${target.pathname}`,
      iat: Math.floor(Date.now() / 1000),
      jti: crypto.randomUUID()
    }
    if (token !== undefined) payload.ath = await sha256(token)
    if (this.#nonce !== null) payload.nonce = this.#nonce
    const input = `${base64Url(utf8(JSON.stringify(header)))}.${base64Url(utf8(JSON.stringify(payload)))}`
    const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, utf8(input))
    return `${input}.${base64Url(new Uint8Array(signature))}`
  }

  /** Remembers the answer's nonce; true when the answer asks for a new one (retry the call once). */
  async learn (response: Response): Promise<boolean> {
    const nonce = response.headers.get('dpop-nonce')
    const changed = nonce !== null && nonce !== this.#nonce
    if (nonce !== null) this.#nonce = nonce
    if (!changed || (response.status !== 400 && response.status !== 401)) return false
    if ((response.headers.get('www-authenticate') ?? '').includes('use_dpop_nonce')) return true
    try {
      const body = await response.clone().json() as { code?: unknown, error?: unknown }
      return body.code === 'use_dpop_nonce' || body.error === 'use_dpop_nonce'
    } catch {
      return false
    }
  }
}
