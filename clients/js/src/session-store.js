/**
 * session-store.js: the observable half of the client. It holds the immutable snapshot that
 * subscribers see (`useSyncExternalStore`, a Recoil atom, a Vue ref) and a short log of what the
 * client did, and tells listeners about each change. It decides nothing.
 */

export const MAX_LOG = 50;

export class SessionStore {
  #state;
  #listeners = new Set();
  #logListeners = new Set();
  #log = [];
  #now;

  constructor(initial, { now = () => Date.now() } = {}) {
    this.#state = Object.freeze({ ...initial });
    this.#now = now;
  }

  /** The current snapshot: the same object until something changes. */
  get state() {
    return this.#state;
  }

  /** Replace the snapshot and tell every subscriber. */
  publish(state) {
    this.#state = Object.freeze({ ...state });
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#state);
      } catch (error) {
        console.error(error);
      }
    }
  }

  /** Call `listener(state)` on every change; returns the function that unsubscribes. */
  subscribe(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Call `listener(entry)` for each log entry {at, level, text}; returns the unsubscriber. */
  onLog(listener) {
    this.#logListeners.add(listener);
    return () => this.#logListeners.delete(listener);
  }

  /** The recent log entries, oldest first (at most `MAX_LOG`). */
  getLog() {
    return [...this.#log];
  }

  /** Add a log entry; `level` is ok, info, warn or error. Never pass tokens or passwords. */
  emit(level, text) {
    const entry = Object.freeze({ at: this.#now(), level, text });
    this.#log.push(entry);
    if (this.#log.length > MAX_LOG) this.#log.shift();
    for (const listener of [...this.#logListeners]) {
      try {
        listener(entry);
      } catch (error) {
        console.error(error);
      }
    }
  }

  /** Forget every listener (dispose). */
  clear() {
    this.#listeners.clear();
    this.#logListeners.clear();
  }
}
