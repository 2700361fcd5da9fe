/**
 * token-client.js: the `TokenClient` class, which puts the parts together and owns the rules.
 *
 * The parts, each small and tested on its own:
 *   retrying-fetch.js    the refresh request: bounded retries, backoff with jitter, Retry-After
 *   clock.js             the server's time (from `iat` and `Date`), so a wrong clock is harmless
 *   session-store.js     the immutable snapshot subscribers see, and the log
 *   tab-coordinator.js   Web Lock (with a timeout) and BroadcastChannel between tabs
 *   wake-watcher.js      visibility, online, back-forward cache and late timers
 *   refresh-timers.js    refresh ahead of expiry, and try again later after a failure
 *   bearer-request.js    the token on a call, the caller's own Authorization, what a 401 means
 *   dpop.js              the browser's DPoP key (WebCrypto, non-extractable, in IndexedDB) and its proofs
 *
 * The rules (what this file decides):
 * - Retry exactly once. Only a 401 `token_expired` (or `invalid_token` for a token this client
 *   sent) starts a refresh; any other 401, or a second 401 after the retry, is final.
 * - Revoked. A 401 `token_revoked` means the session was ended elsewhere: no refresh is tried,
 *   the client signs out (and tells the other tabs), as for a logout in another tab.
 * - Single flight. Calls failing together share one refresh and are all retried with its token.
 * - Tabs. Refresh, login and logout run under the cross-tab lock; a tab that gets the lock first
 *   checks whether another tab already refreshed.
 * - Session guard. A refresh or login answer that arrives after its session logged out (or was
 *   replaced by another login) is dropped, and a call is never retried as a different session.
 * - Only a 401 from the refresh ends the session. A network failure sets `offline` and keeps the
 *   session; a 5xx or 429 is retried later. Both are renewed when the network is back, the page
 *   is shown again, or the recovery timer fires (backoff with jitter, at most once a minute).
 * - DPoP (RFC 9449). Login makes a new key and sends a proof of it, so the session is bound to this
 *   browser; refresh and logout send a proof of the kept key (a new one for each attempt), logout
 *   deletes the key. A 401 `use_dpop_nonce` is answered once with a proof carrying the server's
 *   `DPoP-Nonce`. Without WebCrypto or IndexedDB the session is unbound (and the state says so).
 * - Waking up (page shown, online, a late timer) checks the token against the time now and
 *   refreshes at once if it has expired, and calls made meanwhile wait for that refresh.
 */

import { describeRequest, sentAuthorization, unauthorizedOutcome, withBearer } from "./bearer-request.js";
import { DpopKeys } from "./dpop.js";
import { ServerClock, parseHttpDate, sessionFromTokenResponse } from "./clock.js";
import { NetworkError, ProblemError, SessionEndedError, authErrorCode, isNetworkFailure, readProblem } from "./errors.js";
import { RefreshTimers } from "./refresh-timers.js";
import { RETRY_DEFAULTS, fetchWithRetry, isRetryableStatus, retryAfterMs } from "./retrying-fetch.js";
import { SessionStore } from "./session-store.js";
import { TabCoordinator } from "./tab-coordinator.js";
import { WakeWatcher } from "./wake-watcher.js";

export const DEFAULT_ENDPOINTS = Object.freeze({
  refresh: "/api/auth/refresh",
  login: "/api/auth/login",
  logout: "/api/auth/logout",
  logoutAll: "/api/auth/logout-all",
});

function copySession(incoming) {
  return Object.freeze({ ...incoming, user: Object.freeze({ ...incoming.user }) });
}

export class TokenClient {
  #session = null;          // {token, sid, jti, user, issuedAt, expiresAt}; only ever in memory
  #epoch = 0;               // changes whenever the session identity changes (login, logout, switch)
  #action = 0;              // changes on each login or logout started in this tab
  #retired = new Set();     // session ids this browser has moved away from; never adopted again
  #inflight = null;         // the one refresh of this tab in progress
  #loginsPending = 0;
  #heldMessage = null;      // the latest session message that arrived during this tab's login
  #refreshes = 0;
  #offline = false;
  #refreshTimers;
  #store;
  #clock;
  #tabs;
  #wake = null;
  #endpoints;
  #refreshAhead;
  #retry;
  #random;
  #fetch;
  #timers;
  #dpop;                    // DpopKeys, or null when turned off
  #dpopNonce = null;        // the latest DPoP-Nonce the server sent
  #origin;

  constructor({ refreshAhead = 60, name = "silent-auth", endpoints = {}, settleMs = 50, lockTimeoutMs = 10_000,
                retry = {}, wake = true, now = () => Date.now(), random = Math.random,
                timers = globalThis, locks = globalThis.navigator?.locks,
                BroadcastChannel: Channel = globalThis.BroadcastChannel,
                fetch: fetchImpl = globalThis.fetch.bind(globalThis), dpop = true,
                origin = globalThis.location?.origin ?? "http://localhost" } = {}) {
    this.#origin = origin;
    this.#dpop = dpop === false ? null : new DpopKeys({ name, ...(typeof dpop === "object" ? dpop : {}) });
    this.#refreshAhead = Math.max(0, Number(refreshAhead) || 0);
    this.#endpoints = { ...DEFAULT_ENDPOINTS, ...endpoints };
    this.#timers = {
      setTimeout: timers.setTimeout.bind(timers), clearTimeout: timers.clearTimeout.bind(timers),
      setInterval: timers.setInterval.bind(timers), clearInterval: timers.clearInterval.bind(timers),
    };
    const sleep = (ms) => new Promise((resolve) => this.#timers.setTimeout(resolve, ms));
    this.#retry = { ...RETRY_DEFAULTS, sleep, ...retry };
    this.#random = random;
    this.#fetch = fetchImpl;
    this.#clock = new ServerClock({ now });
    this.#refreshTimers = new RefreshTimers({ timers: this.#timers, random });
    this.#store = new SessionStore(this.#snapshot("restoring", null), { now });
    this.#tabs = new TabCoordinator({
      name, settleMs, lockTimeoutMs, locks, Channel, ...this.#timers, onMessage: (message) => this.#onMessage(message),
      onLockTimeout: () => this.#emit("warn", `another tab held the lock over ${lockTimeoutMs / 1000} s (frozen?) → went ahead without it`),
    });
    if (wake) this.#wake = new WakeWatcher({ ...this.#timers, ...(typeof wake === "object" ? wake : {}), now,
                                             onWake: (reason) => this.#onWake(reason) });
    // Bound, so that `subscribe` and `getSnapshot` may be passed around (useSyncExternalStore).
    this.subscribe = this.subscribe.bind(this);
    this.getSnapshot = this.getSnapshot.bind(this);
  }

  /** The current state: an immutable object, replaced (never mutated) on every change. */
  getSnapshot() {
    return this.#store.state;
  }

  /** Call `listener(state)` on every change; returns the function that unsubscribes. */
  subscribe(listener) {
    return this.#store.subscribe(listener);
  }

  /** Call `listener(entry)` for each log entry {at, level, text}; returns the unsubscriber. */
  onLog(listener) {
    return this.#store.onLog(listener);
  }

  /** The recent log entries, oldest first. */
  getLog() {
    return this.#store.getLog();
  }

  /**
   * The access token itself, for the rare consumer that cannot use `fetch` (a WebSocket
   * handshake, an adapter). Do not store it; ask again each time, since it changes on every refresh.
   */
  getAccessToken() {
    return this.#session?.token ?? null;
  }

  /**
   * A token to send now: waits for a refresh in flight, and renews first when the token has
   * expired by the server's clock (after sleep). Null when signed out. For adapters.
   */
  async getFreshToken() {
    await this.#settled();
    const session = this.#session;
    if (!session) return null;
    if (session.expiresAt <= this.#clock.local()) {
      try {
        return (await this.#renew(session.token, this.#epoch)).session.token;
      } catch (error) {
        if (error instanceof SessionEndedError) return this.#session?.token ?? null;
        throw error;
      }
    }
    return session.token;
  }

  /**
   * After an API answered 401 for `staleToken`: a newer token of the same session (refreshing
   * once for every caller that asks together), or a `SessionEndedError`. For adapters, which
   * then retry their call once; check the 401's code first (`shouldRenew`).
   */
  async renewAfter(staleToken) {
    const session = this.#session;
    if (!session) throw new SessionEndedError("Not signed in.");
    const outcome = await this.#renew(staleToken, this.#epoch);
    if (outcome.session.sid !== session.sid) throw new SessionEndedError("Another login replaced this session.");
    return outcome.session.token;
  }

  /**
   * What a 401 with `code` means for the session of `token`: "renew" (expired or rejected),
   * "revoked" (the client signs out, as `fetch` does), or "final". For adapters.
   */
  handleUnauthorized(code, token) {
    const outcome = unauthorizedOutcome(code);
    if (outcome === "revoked" && this.#session && this.#session.token === token) {
      this.#end("Your session has ended; log in again.", "access token revoked → logged out", { share: true });
    }
    return outcome;
  }

  /**
   * The headers that authorize a call of `method` to `url`, made as this client's `fetch` makes
   * them: `{Authorization: "Bearer <token>"}`, or for a DPoP-bound token (`token_type: "DPoP"`)
   * `{Authorization: "DPoP <token>", DPoP: <a new proof for this method and URL, with ath>}`; `{}`
   * when signed out. Without `token` it sends `getFreshToken()`'s; `nonce` (the `DPoP-Nonce` of a
   * 401 `use_dpop_nonce`) goes into this proof and the next ones. Ask again for every request (a
   * proof is good once). For adapters and hand-made requests.
   */
  async authorizationHeaders(method, url, { token, nonce } = {}) {
    const sent = token === undefined ? await this.getFreshToken() : token;
    if (!sent) return {};
    if (nonce) this.#dpopNonce = nonce;
    const key = await this.#bindingKey(sent);
    if (!key) return { Authorization: `Bearer ${sent}` };
    const proof = await this.#proofFor(key, String(method || "GET").toUpperCase(), url, sent);
    return { Authorization: `DPoP ${sent}`, DPoP: proof };
  }

  /** The clock offset measured from the server (server minus this machine), in ms. */
  get clockOffset() {
    return this.#clock.offset;
  }

  /** Close the channel, stop the timers and listeners (tests, hot reload). */
  dispose() {
    this.#refreshTimers.cancel();
    this.#tabs.close();
    this.#wake?.close();
    this.#store.clear();
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
        if (this.getSnapshot().status === "restoring" && !(error instanceof NetworkError)) {
          this.#setState("signed-out", null, "The session could not be restored.");
        }
        this.#emit("error", `could not restore the session: ${error.message}`);
        throw error;
      }
    }
    return this.getSnapshot();
  }

  /** Log in with email and password; resolves with the user, throws `ProblemError`. */
  async login({ email, password }) {
    const action = ++this.#action;
    this.#epoch += 1; // a refresh of the previous session that is still on its way is dropped
    this.#loginsPending += 1;
    try {
      return await this.#tabs.withLock(async (share) => {
        let key = await this.#newKey();
        const init = {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ email, password }),
        };
        const send = (i) => this.#call(this.#endpoints.login, i);
        let response = await this.#proved(key, this.#endpoints.login, init, send);
        if (key && response.status === 401 && await authErrorCode(response) === "invalid_dpop_proof") {
          // A proof's `iat` is checked against the server's clock, which this tab has not heard yet:
          // when the answer's Date shows this clock is off, sign again by the server's time, once.
          const before = this.#clock.offset;
          this.#clock.observe(parseHttpDate(response.headers.get("Date")), this.#clock.local());
          if (this.#clock.offset !== before) {
            this.#emit("info", "the DPoP proof's time was off by this clock → signed again by the server's");
            response = await this.#proved(key, this.#endpoints.login, init, send);
          }
        }
        if (key && response.status === 401 && await authErrorCode(response) === "invalid_dpop_proof") {
          // The server refused this browser's proof (its public origin is not this page's?): an
          // unbound session rather than none; unless it requires bound sessions, it then says no again.
          this.#emit("warn", "the server refused the DPoP proof of the login → logging in unbound");
          key = null;
          response = await this.#call(this.#endpoints.login, init);
        }
        if (!response.ok) throw await ProblemError.from(response);
        let session = await this.#sessionFrom(response, key);
        if (key) {
          try {
            await this.#dpop.keep(key);
          } catch (error) {
            this.#emit("warn", `the DPoP key could not be kept (${error.message}) → this tab only; a reload logs out`);
          }
        }
        if (action !== this.#action) {
          this.#emit("warn", "a login answer arrived after a newer login or logout → dropped");
          throw new SessionEndedError("A newer login or logout replaced this one.");
        }
        this.#switchTo(session);
        this.#emit("ok", `logged in as ${session.user.name}${session.keyThumbprint ? " (bound to this browser)" : ""}`);
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
      await this.#tabs.withLock(async () => {
        const key = await this.#keptKey();
        try {
          const response = await this.#proved(key, this.#endpoints.logout, { method: "POST", credentials: "same-origin" },
                                              (init) => this.#call(this.#endpoints.logout, init));
          if (!response.ok) throw await ProblemError.from(response);
        } finally {
          if (key) await this.#dpop.forget().catch((error) => this.#emit("warn", `the DPoP key could not be deleted: ${error.message}`));
        }
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
   * or a Request, which is cloned); a stream body cannot be sent twice. Rejects with a
   * `NetworkError` (a TypeError) when the network fails; the session is kept.
   */
  async fetch(input, init = {}) {
    await this.#settled(); // after a wake-up, a refresh may be on its way: use its token if this one expired
    const session = this.#session;
    const epoch = this.#epoch;
    const callerAuth = sentAuthorization(input, init);
    // A Request's body can be read once: send a clone first and keep the original for the retry.
    const first = await this.#send(input instanceof Request ? input.clone() : input, init,
                                   callerAuth ? null : session?.token);
    if (first.status !== 401 || !session || callerAuth) return first;

    const code = await authErrorCode(first);
    const outcome = unauthorizedOutcome(code);
    if (outcome === "revoked") {
      // The session was ended elsewhere (logout, revoked, logged out everywhere): a refresh
      // cannot bring it back, so do not try; sign out as for a logout in another tab.
      if (this.#epoch === epoch && this.#session?.sid === session.sid) {
        this.#end("Your session has ended; log in again.", `access token revoked for ${describeRequest(input, init)} → logged out`,
                  { share: true });
      }
      return first;
    }
    if (outcome !== "renew") return first;
    const what = describeRequest(input, init);
    const reason = code === "token_expired" ? "access token expired" : "access token rejected";
    if (this.#epoch !== epoch || this.#session?.sid !== session.sid) {
      this.#emit("warn", `${reason} for ${what}, but its session has ended → not retried`);
      return first;
    }
    let renewed;
    try {
      renewed = await this.#renew(session.token, epoch);
    } catch (error) {
      if (error instanceof SessionEndedError) return first;
      throw error;
    }
    const second = await this.#send(input, init, renewed.session.token);
    const result = second.ok ? "✓" : `✗ ${second.status}`;
    this.#emit(second.ok ? "ok" : "warn", `${reason} → ${renewed.how} → retried ${what} ${result}`);
    return second;
  }

  async #send(input, init, token) {
    const key = await this.#bindingKey(token);
    if (key) {
      // A DPoP-bound access token (ACCESS_TOKEN_BINDING=dpop): `DPoP <token>` and a proof with its hash.
      const method = (init.method || (input instanceof Request ? input.method : "GET")).toUpperCase();
      const url = input instanceof Request ? input.url : String(input);
      return this.#proved(key, url, { ...withBearer(input, init, token, "DPoP"), method },
                          (prepared) => this.#call(input, prepared), token);
    }
    return this.#call(input, withBearer(input, init, token));
  }

  /** The underlying fetch, with network failures as `NetworkError` and `offline` kept up to date. */
  async #call(input, init) {
    let response;
    try {
      response = await this.#fetch(input, init);
    } catch (error) {
      if (!isNetworkFailure(error)) throw error;
      this.#setOffline(true);
      throw error instanceof NetworkError ? error : new NetworkError(error);
    }
    this.#setOffline(false); // an answer, whatever its status: the network is there
    return response;
  }

  /**
   * Wait for this tab's refresh in flight, whatever its outcome, when the token it would replace
   * is of no use (none yet, or expired by the clock); a refresh ahead of expiry delays no call.
   */
  async #settled() {
    const inflight = this.#inflight;
    const session = this.#session;
    if (inflight && (!session || session.expiresAt <= this.#clock.local())) await inflight.catch(() => {});
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
    const inflight = this.#tabs.withLock((share) => this.#refresh(staleToken, epoch, share));
    this.#inflight = inflight;
    const clear = () => { if (this.#inflight === inflight) this.#inflight = null; };
    inflight.then(clear, clear);
    return inflight;
  }

  async #refresh(staleToken, epoch, share) {
    if (epoch !== this.#epoch) throw new SessionEndedError();
    const current = this.#session;
    // Holding the lock: maybe another tab refreshed while this one waited for it.
    if (current && current.token !== staleToken && current.expiresAt > this.#clock.local()) {
      return { session: current, how: "another tab refreshed" };
    }
    this.#refreshTimers.cancelRetry();
    this.#refreshes += 1;
    this.#setState(this.getSnapshot().status, current, this.getSnapshot().reason, true);
    let response;
    const key = await this.#keptKey();
    try {
      response = await fetchWithRetry((input, init) => this.#proved(key, input, init, (i) => this.#fetch(input, i)),
                                      this.#endpoints.refresh, {
        method: "POST", credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store",
      }, { ...this.#retry, random: this.#random, now: () => this.#clock.local(),
           onRetry: ({ attempt, delay, reason }) =>
             this.#emit("warn", `refresh failed (${reason}) → retry ${attempt} in ${(delay / 1000).toFixed(1)} s`) });
    } catch (error) {
      this.#setState(this.getSnapshot().status, this.#session, this.getSnapshot().reason, false);
      if (error instanceof NetworkError) {
        this.#setOffline(true);
        this.#emit("warn", "refresh failed: the network is unreachable → session kept, renewed when it is back");
        this.#retryLater(null);
      }
      throw error;
    }
    if (response.ok) {
      const session = await this.#sessionFrom(response, key);
      this.#refreshTimers.succeeded();
      this.#setOffline(false);
      if (epoch !== this.#epoch) {
        this.#emit("warn", "a refresh answered after its session ended → token dropped");
        this.#setState(this.getSnapshot().status, this.#session, this.getSnapshot().reason, false);
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
    this.#setOffline(false);
    this.#setState(this.getSnapshot().status, this.#session, this.getSnapshot().reason, false);
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
    if (isRetryableStatus(response.status)) {
      this.#emit("error", `refresh failed: ${problem.detail} → session kept, tried again later`);
      this.#retryLater(retryAfterMs(response, this.#clock.local()));
    } else {
      this.#emit("error", `refresh failed: ${problem.detail}`);
    }
    throw new ProblemError(problem);
  }

  async #sessionFrom(response, key = null) {
    const receivedAt = this.#clock.local();
    const body = await response.json();
    const before = this.#clock.offset;
    const session = Object.freeze({
      ...sessionFromTokenResponse(body, this.#clock, { receivedAt, date: response.headers.get("Date") }),
      keyThumbprint: key?.thumbprint ?? null,
    });
    const offset = this.#clock.offset;
    if (Math.abs(offset - before) >= 1000) {
      this.#emit("info", offset === 0 ? "this clock agrees with the server's"
        : `this clock is ${Math.round(Math.abs(offset) / 1000)} s ${offset > 0 ? "behind" : "ahead of"} the server's → timing by the server's`);
    }
    return session;
  }

  // ---- DPoP ----------------------------------------------------------------------------------

  /** A new key for a login, or null (unbound) when DPoP is off, unavailable or failed. */
  async #newKey() {
    if (!this.#dpop) return null;
    if (!this.#dpop.available) {
      this.#emit("warn", `no ${this.#dpop.missing} in this browser → the session is not bound to it`);
      return null;
    }
    try {
      return await this.#dpop.create();
    } catch (error) {
      this.#emit("warn", `no DPoP key could be made (${error.message}) → the session is not bound to this browser`);
      return null;
    }
  }

  /** The key kept by a login of this browser (any tab), or null. */
  async #keptKey() {
    if (!this.#dpop?.available) return null;
    try {
      return await this.#dpop.current();
    } catch (error) {
      this.#emit("warn", `the DPoP key could not be read: ${error.message}`);
      return null;
    }
  }

  /**
   * `send(init)` with a new DPoP proof of `key` for `path` (none without a key); a 401
   * `use_dpop_nonce` is answered once with a proof carrying the server's nonce. Every answer's
   * `DPoP-Nonce` is kept for the next proof.
   */
  async #proved(key, path, init, send, accessToken = null) {
    if (!key) return send(init);
    const attempt = async () => {
      const proof = await this.#proofFor(key, init.method ?? "GET", path, accessToken);
      const headers = new Headers(init.headers);
      headers.set("DPoP", proof);
      const response = await send({ ...init, headers });
      const nonce = response.headers.get("DPoP-Nonce");
      if (nonce) this.#dpopNonce = nonce;
      return { response, nonce };
    };
    const { response, nonce } = await attempt();
    if (response.status !== 401 || !nonce || await authErrorCode(response) !== "use_dpop_nonce") return response;
    this.#emit("info", "the server asked for a DPoP nonce → signed again with it");
    return (await attempt()).response;
  }

  /** A new proof of `key` for `method` and `url` (resolved against the origin), with the latest nonce. */
  #proofFor(key, method, url, accessToken = null) {
    return key.proof({ htm: method, htu: new URL(url, this.#origin).href, now: this.#clock.now(),
                       nonce: this.#dpopNonce, accessToken });
  }

  /** The kept key when `token` is this session's DPoP-bound token (`token_type: DPoP`), else null (Bearer). */
  async #bindingKey(token) {
    if (!token || this.#session?.token !== token || this.#session.tokenType !== "DPoP") return null;
    return this.#keptKey();
  }

  /** Try again later after a refresh failed for a reason that may pass (offline, 5xx, 429). */
  #retryLater(askedMs) {
    this.#refreshTimers.retryLater(askedMs, () => {
      const session = this.#session;
      if (!session && this.getSnapshot().status !== "restoring") return;
      this.#renew(session?.token ?? null, this.#epoch).then(
        (outcome) => this.#emit("ok", `tried again after a failed refresh → ${outcome.how}`), () => {});
    });
  }

  // ---- wake-up -------------------------------------------------------------------------------

  #onWake(reason) {
    const session = this.#session;
    const state = this.getSnapshot();
    if (!session) {
      if (state.status === "restoring" && state.offline) {
        this.#emit("info", `${reason} → restoring the session`);
        this.restore().catch(() => {});
      }
      return;
    }
    const now = this.#clock.local();
    const expired = session.expiresAt <= now;
    const due = expired || (this.#refreshAheadAt(session) ?? Infinity) <= now;
    if (!due && !this.#offline) return;
    const why = expired ? "the token has expired" : due ? "the token is about to expire" : "a refresh failed meanwhile";
    this.#emit("info", `${reason}; ${why} → refreshing before the next call`);
    this.#renew(session.token, this.#epoch).then(
      (outcome) => this.#emit("ok", `refresh after waking up → ${outcome.how}`),
      () => {},
    );
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
    this.#refreshTimers.cancel();
    this.#session = null;
    this.#offline = false;
    if (session) this.#retired.add(session.sid);
    this.#setState("signed-out", null, reason, false);
    if (logText) this.#emit(share ? "info" : "warn", logText);
    if (share && session) this.#tabs.post({ type: "logout", sid: session.sid });
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
        this.#offline = false;
        this.#adopt(copySession(incoming));
        this.#emit("info", "another tab refreshed → token shared");
      } else {
        this.#switchTo(copySession(incoming));
        this.#emit("info", `another tab logged in as ${incoming.user?.name}`);
      }
    } else if (message?.type === "logout" && typeof message.sid === "string") {
      this.#retired.add(message.sid);
      if (this.#session?.sid === message.sid) {
        this.#end("You were logged out in another tab.", "another tab logged out", { share: false });
      }
    }
  }

  /** Proactive refresh `refreshAhead` seconds before expiry, when that is sensible. */
  #schedule() {
    this.#refreshTimers.cancelAhead();
    const at = this.#refreshAheadAt(this.#session);
    if (at === null) return;
    const session = this.#session;
    this.#refreshTimers.ahead(at - this.#clock.local(), () => {
      if (this.#session !== session) return;
      this.#renew(session.token, this.#epoch).then(
        (outcome) => this.#emit("ok", `refreshing ahead of expiry → ${outcome.how}`),
        (error) => this.#emit("warn", `refresh ahead of expiry failed: ${error.message}`),
      );
    });
  }

  #refreshAheadAt(session) {
    if (!session || !this.#refreshAhead) return null;
    const margin = this.#refreshAhead * 1000;
    if (margin > (session.expiresAt - session.issuedAt) / 2) return null;
    return session.expiresAt - margin;
  }

  #setOffline(offline) {
    if (this.#offline === offline) return;
    this.#offline = offline;
    const state = this.getSnapshot();
    this.#setState(state.status, this.#session, state.reason, state.refreshing);
    if (!offline) this.#emit("ok", "the network is back");
  }

  #snapshot(status, session, reason = null, refreshing = false) {
    return {
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
      offline: this.#offline,
      clockOffset: this.#clock?.offset ?? 0,
      keyThumbprint: session?.keyThumbprint ?? null,
      dpop: !this.#dpop ? "off" : this.#dpop.available ? "available" : `no ${this.#dpop.missing}`,
      reason,
    };
  }

  #setState(status, session, reason = null, refreshing = false) {
    this.#store.publish(this.#snapshot(status, session, reason, refreshing));
  }

  #emit(level, text) {
    this.#store.emit(level, text);
  }
}
