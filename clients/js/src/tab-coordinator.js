/**
 * tab-coordinator.js: the tabs of one browser profile share one refresh cookie, so they take
 * turns with it. Refreshes, logins and logouts run under a Web Lock (`navigator.locks`); the tab
 * that got a new token shares it on a BroadcastChannel and keeps the lock a moment longer
 * (`settleMs`), so that a tab queued on the lock has the token before it gets the lock.
 *
 * A frozen tab (a background tab the browser suspended mid-refresh) can hold the lock for ever, so
 * waiting for it is bounded: after `lockTimeoutMs` the request is withdrawn (an AbortSignal) and
 * the task runs without the lock. That is safe because the server forgives a refresh token
 * presented twice within its reuse grace, and after that the cookie jar holds the rotated token.
 * A lost message is just as harmless: the tab that missed it refreshes once more on its own.
 */

export class LockTimeoutError extends Error {
  constructor(name, ms) {
    super(`the lock ${name} was not granted within ${ms} ms`);
    this.name = "LockTimeoutError";
  }
}

export class TabCoordinator {
  #lockName;
  #channel = null;
  #locks;
  #settleMs;
  #lockTimeoutMs;
  #setTimeout;
  #clearTimeout;
  #onLockTimeout;

  constructor({ name = "silent-auth", settleMs = 50, lockTimeoutMs = 10_000, onMessage = () => {},
                onLockTimeout = () => {}, locks = globalThis.navigator?.locks,
                Channel = globalThis.BroadcastChannel, setTimeout: setTimer = globalThis.setTimeout,
                clearTimeout: clearTimer = globalThis.clearTimeout } = {}) {
    this.#lockName = `${name}:session`;
    this.#locks = locks?.request ? locks : null;
    this.#settleMs = settleMs;
    this.#lockTimeoutMs = lockTimeoutMs;
    this.#setTimeout = setTimer;
    this.#clearTimeout = clearTimer;
    this.#onLockTimeout = onLockTimeout;
    if (typeof Channel === "function") {
      this.#channel = new Channel(`${name}:session`);
      this.#channel.onmessage = (event) => onMessage(event.data);
    }
  }

  /** Whether tabs are coordinated (Web Locks available); without, each tab works on its own. */
  get locking() {
    return this.#locks !== null;
  }

  /**
   * Run `task(share)` holding the cross-tab lock. `share(message)` broadcasts to the other tabs;
   * the lock is then kept `settleMs` longer. The returned promise settles as soon as `task` does.
   * If the lock is not granted within `lockTimeoutMs`, the task runs without it.
   */
  withLock(task) {
    let shared = false;
    const share = (message) => {
      shared = true;
      this.post(message);
    };
    if (!this.#locks) return task(share);
    const controller = new AbortController();
    const timer = this.#lockTimeoutMs > 0
      ? this.#setTimeout(() => controller.abort(new LockTimeoutError(this.#lockName, this.#lockTimeoutMs)),
                         this.#lockTimeoutMs)
      : null;
    return new Promise((resolve, reject) => {
      this.#locks.request(this.#lockName, { signal: controller.signal }, async () => {
        this.#clearTimeout(timer);
        try {
          resolve(await task(share));
        } catch (error) {
          reject(error);
          return;
        }
        if (shared && this.#settleMs > 0) await new Promise((done) => this.#setTimeout(done, this.#settleMs));
      }).catch((error) => {
        this.#clearTimeout(timer);
        if (controller.signal.aborted && error === controller.signal.reason) {
          this.#onLockTimeout(error);
          Promise.resolve().then(() => task(share)).then(resolve, reject);
        } else {
          reject(error);
        }
      });
    });
  }

  /** Tell the other tabs (a closed channel means this tab is going away: nothing to do). */
  post(message) {
    try {
      this.#channel?.postMessage(message);
    } catch {
      // A closed channel.
    }
  }

  close() {
    this.#channel?.close();
    this.#channel = null;
  }
}
