/**
 * Cookie mode: the tabs of one origin share one session (one HttpOnly refresh cookie), so they must
 * not refresh it at the same time. A Web Lock serialises refreshes, logins and logouts across tabs
 * where the browser has the Web Locks API; a BroadcastChannel hands the new access token and the
 * logout to the other tabs. Without Web Locks, tabs that do race present the same cookie within the
 * gateway's REFRESH_REUSE_GRACE window and converge on one chain (docs/tokens-and-sessions.md).
 */

/** Messages between the tabs of one origin. */
export type TabMessage =
  | { type: 'token', access: string, expiresAt: number, issuedAt: number }
  | { type: 'logout', sid: string | null }
  | { type: 'ask' }

/** The part of `navigator.locks` (Web Locks API) that the client uses. */
interface LockManagerLike {
  request: <T>(name: string, callback: () => Promise<T>) => Promise<T>
}

function webLocks (): LockManagerLike | null {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks
  return locks !== undefined && typeof locks.request === 'function' ? locks : null
}

/** The part of BroadcastChannel that the client uses (typed here: Node's and the DOM's types differ). */
interface ChannelLike {
  onmessage: ((event: MessageEvent) => void) | null
  postMessage: (message: unknown) => void
  close: () => void
}

export class TabSync {
  readonly #channel: ChannelLike | null
  readonly #locks = webLocks()
  readonly #lockName: string

  constructor (name: string, onMessage: (message: TabMessage) => void) {
    this.#lockName = `${name}:session`
    this.#channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(name) as unknown as ChannelLike : null
    if (this.#channel !== null) {
      this.#channel.onmessage = (event: MessageEvent) => {
        const message = event.data as TabMessage | null
        if (message !== null && typeof message === 'object' && typeof message.type === 'string') onMessage(message)
      }
    }
  }

  /** Whether tabs can wait for each other (Web Locks); without it they rely on the grace window. */
  get hasLocks (): boolean { return this.#locks !== null }

  post (message: TabMessage): void {
    this.#channel?.postMessage(message)
  }

  /** Runs `task` while no other tab of the origin runs one (Web Locks), or at once without the API. */
  async exclusive<T> (task: () => Promise<T>): Promise<T> {
    return this.#locks !== null ? await this.#locks.request(this.#lockName, task) : await task()
  }

  close (): void {
    this.#channel?.close()
  }
}
