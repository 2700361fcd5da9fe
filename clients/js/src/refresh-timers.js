/**
 * refresh-timers.js: the client's two timers. One refreshes ahead of expiry; the other tries a
 * failed refresh again later (offline, 5xx, 429), after the server's `Retry-After` or the next
 * step of an exponential backoff with jitter (2 s, 4 s, ... at most a minute), so that a browser
 * left open on a dead network asks about once a minute, not in a loop.
 */

import { backoffDelay } from "./retrying-fetch.js";

export const RECOVERY_DEFAULTS = Object.freeze({ baseMs: 2_000, maxMs: 60_000 });

export class RefreshTimers {
  #timers;
  #random;
  #backoff;
  #ahead = null;
  #retry = null;
  #failures = 0;

  constructor({ timers = globalThis, random = Math.random, ...backoff } = {}) {
    this.#timers = timers;
    this.#random = random;
    this.#backoff = { ...RECOVERY_DEFAULTS, ...backoff };
  }

  /** Run `task` in `delayMs` (at least 0), replacing the refresh-ahead timer set before. */
  ahead(delayMs, task) {
    this.cancelAhead();
    this.#ahead = this.#timers.setTimeout(() => {
      this.#ahead = null;
      task();
    }, Math.max(0, delayMs));
  }

  cancelAhead() {
    if (this.#ahead !== null) this.#timers.clearTimeout(this.#ahead);
    this.#ahead = null;
  }

  /** After a failure: run `task` after `askedMs` (Retry-After) or the next backoff step. Returns the delay. */
  retryLater(askedMs, task) {
    this.cancelRetry();
    const delay = askedMs ?? backoffDelay(this.#failures, { ...this.#backoff, random: this.#random });
    this.#failures += 1;
    this.#retry = this.#timers.setTimeout(() => {
      this.#retry = null;
      task();
    }, Math.max(0, delay));
    return delay;
  }

  cancelRetry() {
    if (this.#retry !== null) this.#timers.clearTimeout(this.#retry);
    this.#retry = null;
  }

  /** A refresh succeeded: the next failure starts from the first backoff step again. */
  succeeded() {
    this.#failures = 0;
    this.cancelRetry();
  }

  cancel() {
    this.cancelAhead();
    this.cancelRetry();
  }
}
