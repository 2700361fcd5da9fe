/**
 * wake-watcher.js: notice when time passed without this tab running. A laptop that slept, a
 * background tab the browser throttled, a network that came back: in each case the access token
 * may have expired meanwhile, and the client should renew it before the next call instead of
 * after a failed one. Signals: the page becoming visible again, `online`, `pageshow` from the
 * back-forward cache, and a heartbeat timer that fires much later than it was due.
 */

export class WakeWatcher {
  #onWake;
  #target;
  #document;
  #intervalMs;
  #lateMs;
  #now;
  #clearInterval;
  #timer = null;
  #last;
  #handlers = [];

  constructor({ onWake, target = globalThis, document = globalThis.document, intervalMs = 15_000,
                lateMs = 15_000, now = () => Date.now(), setInterval: every = globalThis.setInterval,
                clearInterval: stop = globalThis.clearInterval } = {}) {
    this.#onWake = onWake;
    this.#target = target;
    this.#document = document;
    this.#intervalMs = intervalMs;
    this.#lateMs = lateMs;
    this.#now = now;
    this.#clearInterval = stop;
    this.#listen(document, "visibilitychange", () => {
      if (document.visibilityState === "visible") this.#wake("the page is visible again");
    });
    this.#listen(target, "online", () => this.#wake("the network is back"));
    this.#listen(target, "pageshow", (event) => {
      if (event?.persisted) this.#wake("the page came back from the back-forward cache");
    });
    this.#last = now();
    if (intervalMs > 0 && typeof every === "function") {
      this.#timer = every(() => this.#beat(), intervalMs);
      this.#timer?.unref?.(); // Node: a heartbeat keeps no process alive
    }
  }

  #listen(target, type, handler) {
    if (typeof target?.addEventListener !== "function") return;
    target.addEventListener(type, handler);
    this.#handlers.push(() => target.removeEventListener(type, handler));
  }

  #beat() {
    const now = this.#now();
    const late = now - this.#last - this.#intervalMs;
    this.#last = now;
    if (late > this.#lateMs) this.#wake(`a timer fired ${Math.round(late / 1000)} s late (the computer slept?)`);
  }

  #wake(reason) {
    this.#last = this.#now();
    this.#onWake(reason);
  }

  close() {
    if (this.#timer !== null) this.#clearInterval(this.#timer);
    this.#timer = null;
    for (const remove of this.#handlers.splice(0)) remove();
  }
}
