/**
 * token-client.js: silent sessions for a single-page app, in one framework-agnostic module.
 *
 * The pattern. The access token (a short-lived JWT) lives only in this module's memory, never in
 * localStorage, sessionStorage or a readable cookie. The refresh token lives in an httpOnly cookie
 * that page scripts cannot read; only `POST /api/auth/refresh` sees it. When an API call answers
 * 401 `token_expired`, the client trades the cookie for a new access token and retries the call
 * once, so the person never notices. On page load it restores the session the same way.
 *
 * The hard cases it gets right:
 * - Retry exactly once. Only a 401 `token_expired` (or `invalid_token` for a token this client
 *   sent) starts a refresh; any other 401, or a second 401 after the retry, is final.
 * - Revoked. A 401 `token_revoked` means the session was ended elsewhere: no refresh is tried,
 *   the client signs out (and tells the other tabs), as for a logout in another tab.
 * - Single flight. Calls failing together share one refresh and are all retried with its token.
 * - Tabs. Refreshes, logins and logouts take a Web Lock (`navigator.locks`), so two tabs never
 *   present the same refresh token; the winner shares the new access token on a BroadcastChannel,
 *   and a tab that gets the lock first checks whether another tab already refreshed.
 * - Session guard. A refresh or login answer that arrives after its session logged out (or was
 *   replaced by another login) is dropped, and a call is never retried as a different session.
 *
 * Plain use:
 *
 *     import { TokenClient } from "/js/token-client.js";
 *     export const auth = new TokenClient();
 *     auth.subscribe((state) => render(state));        // {status, user, expiresAt, ...}
 *     await auth.restore();                             // silent log-in from the cookie
 *     await auth.login({ email, password });
 *     const response = await auth.fetch("/api/boards", { method: "POST", body, headers });
 *     await auth.logout();
 *
 * React: the state is an immutable snapshot, replaced on every change, so it fits
 * `useSyncExternalStore` as is:
 *
 *     const state = useSyncExternalStore(auth.subscribe, auth.getSnapshot);
 *
 * Recoil: mirror it into an atom with an effect:
 *
 *     const authState = atom({ key: "auth", default: auth.getSnapshot(),
 *       effects: [({ setSelf }) => auth.subscribe(setSelf)] });
 *
 * Vue: mirror it into a shallow ref (in a plugin or a composable):
 *
 *     const authState = shallowRef(auth.getSnapshot());
 *     auth.subscribe((state) => { authState.value = state; });
 *
 * In every case API calls go through `auth.fetch` (or a wrapper around it: an axios adapter, a
 * TanStack Query `queryFn`), which resolves with the final `Response` like `fetch` does and rejects
 * only when the network fails. `onLog(listener)` reports what happened, for a panel or devtools.
 *
 * Options of `new TokenClient({...})`:
 *   refreshAhead  seconds before expiry to refresh proactively (default 60; 0 turns it off). It is
 *                 used only when it is at most half of the token's lifetime: with tokens that live a
 *                 few seconds a timer would refresh almost continuously, so the 401 path does it.
 *   name          names the Web Lock and the BroadcastChannel (default "silent-auth").
 *   endpoints     {refresh, login, logout, logoutAll} paths (defaults under /api/auth).
 *   settleMs      how long the lock is kept after sharing a token (default 50), so that a tab
 *                 queued on the lock receives the token before it gets the lock.
 *   fetch         the underlying fetch (default: the global one).
 *
 * Requirements: a secure context (https, or http://localhost) for Web Locks; without
 * `navigator.locks` or BroadcastChannel the client still works within one tab.
 */

const DEFAULT_ENDPOINTS = Object.freeze({
  refresh: "/api/auth/refresh",
  login: "/api/auth/login",
  logout: "/api/auth/logout",
  logoutAll: "/api/auth/logout-all",
});

const MAX_LOG = 50;

/** An API error answered as an RFC 9457 problem document; `detail` is written for people. */
export class ProblemError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.name = "ProblemError";
    this.status = problem.status;
    this.code = problem.code || "unknown";
    this.detail = problem.detail || this.message;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.problem = problem;
  }

  /** Build the error from a failed response, whatever its body. */
  static async from(response) {
    return new ProblemError(await readProblem(response));
  }
}

/** The session ended or changed while a call or refresh was on its way. */
export class SessionEndedError extends Error {
  constructor(message = "The session has ended.") {
    super(message);
    this.name = "SessionEndedError";
    this.code = "session_ended";
  }
}

/** Read a problem document from a response without consuming it for the caller. */
export async function readProblem(response) {
  let body = null;
  try {
    body = await response.clone().json();
  } catch {
    body = null;
  }
  if (body && typeof body === "object" && !Array.isArray(body)) {
    return { status: response.status, ...body };
  }
  return { status: response.status, code: "http_error", title: response.statusText,
           detail: `The server answered ${response.status} ${response.statusText}`.trim() };
}

/** The claims of a JWT, unverified: the client only reads its own token's times and ids. */
export function decodeJwt(token) {
  const payload = token.split(".")[1];
  if (!payload) throw new Error("not a JWT");
  const base64 = payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** Turn a TokenResponse into the in-memory session; times are on this machine's clock. */
function sessionFromTokenResponse(body, receivedAt) {
  const claims = decodeJwt(body.access_token);
  const lifetime = (claims.exp - claims.iat) * 1000 || (body.expires_in || 0) * 1000;
  // Trust the server's `exp` unless this clock is clearly off; then count from the answer.
  let expiresAt = claims.exp * 1000;
  if (Math.abs(expiresAt - (receivedAt + lifetime)) > 2000) expiresAt = receivedAt + lifetime;
  return Object.freeze({
    token: body.access_token,
    sid: claims.sid,
    jti: claims.jti,
    user: Object.freeze({ ...body.user }),
    issuedAt: expiresAt - lifetime,
    expiresAt,
  });
}

function describeRequest(input, init) {
  const method = (init.method || (input instanceof Request ? input.method : "GET")).toUpperCase();
  const url = new URL(input instanceof Request ? input.url : String(input), globalThis.location?.href);
  const path = url.origin === globalThis.location?.origin ? url.pathname + url.search : url.href;
  return `${method} ${path}`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class TokenClient {
  #session = null;          // {token, sid, jti, user, issuedAt, expiresAt}; only ever in memory
  #state;                   // the immutable snapshot handed to subscribers
  #epoch = 0;               // changes whenever the session identity changes (login, logout, switch)
  #action = 0;              // changes on each login or logout started in this tab
  #retired = new Set();     // session ids this browser has moved away from; never adopted again
  #inflight = null;         // the one refresh of this tab in progress
  #loginsPending = 0;
  #heldMessage = null;      // the latest session message that arrived during this tab's login
  #refreshes = 0;
  #timer = null;
  #listeners = new Set();
  #logListeners = new Set();
  #log = [];
  #channel = null;
  #lockName;
  #endpoints;
  #refreshAhead;
  #settleMs;
  #fetch;

  constructor({ refreshAhead = 60, name = "silent-auth", endpoints = {}, settleMs = 50,
                fetch: fetchImpl = globalThis.fetch.bind(globalThis) } = {}) {
    this.#refreshAhead = Math.max(0, Number(refreshAhead) || 0);
    this.#endpoints = { ...DEFAULT_ENDPOINTS, ...endpoints };
    this.#settleMs = settleMs;
    this.#fetch = fetchImpl;
    this.#lockName = `${name}:session`;
    if (typeof BroadcastChannel === "function") {
      this.#channel = new BroadcastChannel(`${name}:session`);
      this.#channel.onmessage = (event) => this.#onMessage(event.data);
    }
    this.#state = this.#snapshot("restoring", null);
    // Bound, so that `subscribe` and `getSnapshot` may be passed around (useSyncExternalStore).
    this.subscribe = this.subscribe.bind(this);
    this.getSnapshot = this.getSnapshot.bind(this);
  }

  // ---- state and events ------------------------------------------------------------------

  /** The current state: {status: "restoring"|"signed-in"|"signed-out", user, sessionId, ...}. */
  getSnapshot() {
    return this.#state;
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

  /** The recent log entries, oldest first. */
  getLog() {
    return [...this.#log];
  }

  /**
   * The access token itself, for the rare consumer that cannot use `fetch` (a WebSocket
   * handshake). Do not store it; ask again each time, since it changes on every refresh.
   */
  getAccessToken() {
    return this.#session?.token ?? null;
  }

  /** Close the channel and stop the timer (tests, hot reload). */
  dispose() {
    clearTimeout(this.#timer);
    this.#channel?.close();
    this.#channel = null;
    this.#listeners.clear();
    this.#logListeners.clear();
  }

  // ---- the session ---------------------------------------------------------------------------

  /** On page load: trade the refresh cookie for an access token, silently. */
  async restore() {
    const epoch = this.#epoch;
    try {
      const outcome = await this.#renew(null, epoch);
      if (outcome.how === "restored") {
        this.#emit("ok", `session restored from the refresh cookie as ${outcome.session.user.name}`);
      }
    } catch (error) {
      if (!(error instanceof SessionEndedError)) {
        if (this.#state.status === "restoring") this.#setState("signed-out", null, "The session could not be restored.");
        this.#emit("error", `could not restore the session: ${error.message}`);
        throw error;
      }
    }
    return this.#state;
  }

  /** Log in with email and password; resolves with the user, throws `ProblemError`. */
  async login({ email, password }) {
    const action = ++this.#action;
    this.#epoch += 1; // a refresh of the previous session that is still on its way is dropped
    this.#loginsPending += 1;
    try {
      return await this.#withLock(async (share) => {
        const response = await this.#fetch(this.#endpoints.login, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ email, password }),
        });
        if (!response.ok) throw await ProblemError.from(response);
        const session = sessionFromTokenResponse(await response.json(), Date.now());
        if (action !== this.#action) {
          this.#emit("warn", "a login answer arrived after a newer login or logout → dropped");
          throw new SessionEndedError("A newer login or logout replaced this one.");
        }
        this.#switchTo(session);
        this.#emit("ok", `logged in as ${session.user.name}`);
        share({ type: "session", session });
        return session.user;
      });
    } catch (error) {
      // This login failed, so a login another tab made meanwhile is the browser's session now.
      const held = this.#heldMessage;
      this.#heldMessage = null;
      if (held && this.#loginsPending === 1 && action === this.#action) {
        this.#loginsPending = 0;
        this.#onMessage(held);
      }
      throw error;
    } finally {
      this.#loginsPending = Math.max(0, this.#loginsPending - 1);
      if (this.#loginsPending === 0) this.#heldMessage = null;
    }
  }

  /** End this session here, in every tab, and on the server. */
  async logout() {
    ++this.#action;
    const session = this.#session;
    this.#end("You logged out.", "logged out", { share: true });
    try {
      await this.#withLock(async () => {
        const response = await this.#fetch(this.#endpoints.logout, { method: "POST", credentials: "same-origin" });
        if (!response.ok) throw await ProblemError.from(response);
      });
    } catch (error) {
      this.#emit("error", `logout did not reach the server: ${error.message}`);
      throw error;
    }
    return session?.user ?? null;
  }

  /** End every session of this user, on every device. */
  async logoutEverywhere() {
    ++this.#action;
    const response = await this.fetch(this.#endpoints.logoutAll, { method: "POST", credentials: "same-origin" });
    if (!response.ok && response.status !== 401) throw await ProblemError.from(response);
    this.#end("You logged out everywhere.", "logged out everywhere", { share: true });
  }

  /** Refresh now (a panel button, or before a long upload). */
  async refreshNow() {
    const session = this.#session;
    if (!session) throw new SessionEndedError("Not signed in.");
    const outcome = await this.#renew(session.token, this.#epoch);
    this.#emit("ok", `refresh requested → ${outcome.how}`);
    return outcome.session.user;
  }

  // ---- fetch ---------------------------------------------------------------------------------

  /**
   * `fetch` with `Authorization: Bearer <access token>`; on a 401 for an expired (or rejected)
   * token it refreshes once and retries once. A caller-supplied Authorization header is left
   * alone and never retried. Bodies must be replayable (string, Blob, FormData, URLSearchParams,
   * or a Request, which is cloned); a stream body cannot be sent twice.
   */
  async fetch(input, init = {}) {
    const session = this.#session;
    const epoch = this.#epoch;
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const callerAuth = headers.has("Authorization");
    // A Request's body can be read once: send a clone first and keep the original for the retry.
    const first = await this.#send(input instanceof Request ? input.clone() : input, init,
                                   callerAuth ? null : session?.token);
    if (first.status !== 401 || !session || callerAuth) return first;

    const code = await this.#authErrorCode(first);
    if (code === "token_revoked") {
      // The session was ended elsewhere (logout, revoked, logged out everywhere): a refresh
      // cannot bring it back, so do not try; sign out as for a logout in another tab.
      if (this.#epoch === epoch && this.#session?.sid === session.sid) {
        this.#end("Your session has ended; log in again.", `access token revoked for ${describeRequest(input, init)} → logged out`,
                  { share: true });
      }
      return first;
    }
    if (code !== "token_expired" && code !== "invalid_token") return first;
    const what = describeRequest(input, init);
    const reason = code === "token_expired" ? "access token expired" : "access token rejected";
    if (this.#epoch !== epoch || this.#session?.sid !== session.sid) {
      this.#emit("warn", `${reason} for ${what}, but its session has ended → not retried`);
      return first;
    }
    let outcome;
    try {
      outcome = await this.#renew(session.token, epoch);
    } catch (error) {
      if (error instanceof SessionEndedError) return first;
      throw error;
    }
    const second = await this.#send(input, init, outcome.session.token);
    const result = second.ok ? "✓" : `✗ ${second.status}`;
    this.#emit(second.ok ? "ok" : "warn", `${reason} → ${outcome.how} → retried ${what} ${result}`);
    return second;
  }

  #send(input, init, token) {
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    if (token) headers.set("Authorization", `Bearer ${token}`);
    return this.#fetch(input, { ...init, headers });
  }

  async #authErrorCode(response) {
    const problem = await readProblem(response);
    if (problem.code && problem.code !== "http_error") return problem.code;
    const challenge = response.headers.get("WWW-Authenticate") || "";
    return /error="invalid_token"/.test(challenge) ? "invalid_token" : null;
  }

  // ---- refresh -------------------------------------------------------------------------------

  /**
   * A session whose token is newer than `staleToken`: the one this tab already has, the one a
   * refresh in progress will bring (single flight), or a new one. Resolves with {session, how}.
   */
  #renew(staleToken, epoch) {
    const current = this.#session;
    if (current && current.token !== staleToken) {
      return Promise.resolve({ session: current, how: "already refreshed" });
    }
    if (this.#inflight) {
      return this.#inflight.then((outcome) => ({ ...outcome, how: "joined the refresh in flight" }));
    }
    const inflight = this.#refreshUnderLock(staleToken, epoch);
    this.#inflight = inflight;
    const clear = () => { if (this.#inflight === inflight) this.#inflight = null; };
    inflight.then(clear, clear);
    return inflight;
  }

  #refreshUnderLock(staleToken, epoch) {
    return this.#withLock(async (share) => {
      if (epoch !== this.#epoch) throw new SessionEndedError();
      const current = this.#session;
      // Holding the lock: maybe another tab refreshed while this one waited for it.
      if (current && current.token !== staleToken && current.expiresAt > Date.now()) {
        return { session: current, how: "another tab refreshed" };
      }
      this.#refreshes += 1;
      this.#setState(this.#state.status, current, this.#state.reason, true);
      let response;
      try {
        response = await this.#fetch(this.#endpoints.refresh, {
          method: "POST", credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store",
        });
      } catch (error) {
        this.#setState(this.#state.status, this.#session, this.#state.reason, false);
        throw error;
      }
      if (response.ok) {
        const session = sessionFromTokenResponse(await response.json(), Date.now());
        if (epoch !== this.#epoch) {
          this.#emit("warn", "a refresh answered after its session ended → token dropped");
          this.#setState(this.#state.status, this.#session, this.#state.reason, false);
          throw new SessionEndedError();
        }
        if (current && session.sid !== current.sid) {
          // The cookie now belongs to another login (made in another tab): never retry as it.
          this.#switchTo(session);
          this.#emit("warn", `the browser is now signed in as ${session.user.name} (another tab) → switched`);
          throw new SessionEndedError("Another login replaced this session.");
        }
        if (current) this.#adopt(session); else this.#switchTo(session);
        share({ type: "session", session });
        return { session, how: current ? "refreshed silently" : "restored" };
      }
      const problem = await readProblem(response);
      this.#setState(this.#state.status, this.#session, this.#state.reason, false);
      if (response.status === 401) {
        if (epoch === this.#epoch) {
          if (current) {
            this.#end("Your session has ended; log in again.", "refresh token rejected → logged out", { share: true });
          } else {
            this.#setState("signed-out", null, null);
            this.#emit("info", "no session to restore → signed out");
          }
        }
        throw new SessionEndedError(problem.detail);
      }
      this.#emit("error", `refresh failed: ${problem.detail}`);
      throw new ProblemError(problem);
    });
  }

  /**
   * Run `task(share)` holding the cross-tab lock. `share(message)` broadcasts to other tabs; the
   * lock is then kept `settleMs` longer so that a waiting tab sees the message before the lock.
   * The caller's promise settles as soon as `task` does.
   */
  #withLock(task) {
    let shared = false;
    const share = (message) => {
      shared = true;
      this.#post(message);
    };
    const locks = globalThis.navigator?.locks;
    if (!locks?.request) return task(share);
    return new Promise((resolve, reject) => {
      locks.request(this.#lockName, async () => {
        try {
          resolve(await task(share));
        } catch (error) {
          reject(error);
          return;
        }
        if (shared && this.#settleMs > 0) await sleep(this.#settleMs);
      }).catch(reject);
    });
  }

  // ---- state changes -------------------------------------------------------------------------

  /** A newer token of the same session. */
  #adopt(session) {
    this.#session = session;
    this.#setState("signed-in", session, null, false);
    this.#schedule();
  }

  /** Another session: a login here or in another tab; the old one is never taken back. */
  #switchTo(session) {
    if (this.#session && this.#session.sid !== session.sid) this.#retired.add(this.#session.sid);
    this.#epoch += 1;
    this.#session = session;
    this.#setState("signed-in", session, null, false);
    this.#schedule();
  }

  /** Forget the session: logout here or elsewhere, or a rejected refresh token. */
  #end(reason, logText, { share }) {
    const session = this.#session;
    this.#epoch += 1;
    clearTimeout(this.#timer);
    this.#session = null;
    if (session) this.#retired.add(session.sid);
    this.#setState("signed-out", null, reason, false);
    if (logText) this.#emit(share ? "info" : "warn", logText);
    if (share && session) this.#post({ type: "logout", sid: session.sid });
  }

  #onMessage(message) {
    if (message?.type === "session") {
      const incoming = message.session;
      if (!incoming?.token || this.#retired.has(incoming.sid)) return;
      // Sent before this tab's login took the lock: older than the cookie this login will set.
      if (this.#loginsPending > 0) {
        this.#heldMessage = message;
        return;
      }
      const current = this.#session;
      if (current && current.sid === incoming.sid) {
        if (incoming.token === current.token || incoming.expiresAt < current.expiresAt) return;
        this.#adopt(Object.freeze({ ...incoming, user: Object.freeze({ ...incoming.user }) }));
        this.#emit("info", "another tab refreshed → token shared");
      } else {
        this.#switchTo(Object.freeze({ ...incoming, user: Object.freeze({ ...incoming.user }) }));
        this.#emit("info", `another tab logged in as ${incoming.user?.name}`);
      }
    } else if (message?.type === "logout" && typeof message.sid === "string") {
      this.#retired.add(message.sid);
      if (this.#session?.sid === message.sid) {
        this.#end("You were logged out in another tab.", "another tab logged out", { share: false });
      }
    }
  }

  #post(message) {
    try {
      this.#channel?.postMessage(message);
    } catch {
      // A closed channel: this tab is going away.
    }
  }

  /** Proactive refresh `refreshAhead` seconds before expiry, when that is sensible. */
  #schedule() {
    clearTimeout(this.#timer);
    this.#timer = null;
    const at = this.#refreshAheadAt(this.#session);
    if (at === null) return;
    const session = this.#session;
    this.#timer = setTimeout(() => {
      if (this.#session !== session) return;
      this.#renew(session.token, this.#epoch).then(
        (outcome) => this.#emit("ok", `refreshing ahead of expiry → ${outcome.how}`),
        (error) => this.#emit("warn", `refresh ahead of expiry failed: ${error.message}`),
      );
    }, Math.max(0, at - Date.now()));
  }

  #refreshAheadAt(session) {
    if (!session || !this.#refreshAhead) return null;
    const margin = this.#refreshAhead * 1000;
    if (margin > (session.expiresAt - session.issuedAt) / 2) return null;
    return session.expiresAt - margin;
  }

  #snapshot(status, session, reason = null, refreshing = false) {
    return Object.freeze({
      status,
      user: session?.user ?? null,
      sessionId: session?.sid ?? null,
      tokenId: session?.jti ?? null,
      issuedAt: session?.issuedAt ?? null,
      expiresAt: session?.expiresAt ?? null,
      refreshAheadAt: this.#refreshAheadAt(session),
      refreshAhead: this.#refreshAhead,
      refreshing,
      refreshes: this.#refreshes,
      reason,
    });
  }

  #setState(status, session, reason = null, refreshing = false) {
    this.#state = this.#snapshot(status, session, reason, refreshing);
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#state);
      } catch (error) {
        console.error(error);
      }
    }
  }

  #emit(level, text) {
    const entry = Object.freeze({ at: Date.now(), level, text });
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
}
