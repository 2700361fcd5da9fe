// Each part of the client on its own: clock, retrying fetch, session store, tab coordinator, wake watcher.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ServerClock, sessionFromTokenResponse } from "../src/clock.js";
import { NetworkError, ProblemError, readProblem } from "../src/errors.js";
import { decodeJwt } from "../src/jwt.js";
import { backoffDelay, fetchWithRetry, isRetryableStatus, retryAfterMs } from "../src/retrying-fetch.js";
import { MAX_LOG, SessionStore } from "../src/session-store.js";
import { LockTimeoutError, TabCoordinator } from "../src/tab-coordinator.js";
import { WakeWatcher } from "../src/wake-watcher.js";
import { FakeClock, FakeLocks, fakeChannels, flush, makeToken, problem } from "./fakes.js";

describe("clock", () => {
  test("clocks that agree within the timestamps' resolution keep the server's times exact", () => {
    const clock = new ServerClock({ now: () => 1_000_400 });
    assert.equal(clock.observe(1_000_000), 0);
    assert.equal(clock.now(), 1_000_400);
  });

  test("an offset is measured from iat and expiry is put on this machine's clock", () => {
    let local = 5_000_000;
    const clock = new ServerClock({ now: () => local });
    const iat = Math.floor((local + 600_000) / 1000); // the server is ten minutes ahead
    const session = sessionFromTokenResponse(
      { access_token: makeToken({ sid: "s", jti: "j", iat, exp: iat + 60 }), user: { name: "U" } }, clock);
    assert.ok(Math.abs(clock.offset - 600_000) <= 1_000);
    assert.ok(Math.abs(session.expiresAt - (local + 60_000)) <= 1_000);
    assert.equal(session.expiresAt - session.issuedAt, 60_000);
    local += 1_000;
    assert.ok(Math.abs(clock.now() - (local + 600_000)) <= 1_000);
  });

  test("decodeJwt reads base64url claims, including non-ASCII", () => {
    assert.deepEqual(decodeJwt(makeToken({ name: "Zoë ✓" })), { name: "Zoë ✓" });
    assert.throws(() => decodeJwt("nope"), /not a JWT/);
  });
});

describe("retrying fetch", () => {
  const sleeps = [];
  const sleep = async (ms) => { sleeps.push(ms); };

  test("backoff doubles, is capped, and its jitter keeps it between half and all of each step", () => {
    assert.deepEqual([0, 1, 2, 3, 4].map((n) => backoffDelay(n, { random: () => 0 })), [250, 500, 1000, 2000, 2000]);
    assert.deepEqual([0, 1, 2, 3, 4].map((n) => backoffDelay(n, { random: () => 0.999999 }).toFixed(0)),
                     ["500", "1000", "2000", "4000", "4000"]);
  });

  test("Retry-After as seconds or as an HTTP date", () => {
    const now = Date.UTC(2026, 0, 1);
    assert.equal(retryAfterMs(new Response(null, { status: 503, headers: { "Retry-After": "7" } }), now), 7_000);
    const date = new Date(now + 30_000).toUTCString();
    assert.equal(retryAfterMs(new Response(null, { status: 503, headers: { "Retry-After": date } }), now), 30_000);
    assert.equal(retryAfterMs(new Response(null, { status: 503 }), now), null);
    assert.equal(retryAfterMs(new Response(null, { status: 503, headers: { "Retry-After": "soon" } }), now), null);
  });

  test("5xx and 429 are retryable, 4xx are not", () => {
    assert.deepEqual([500, 502, 503, 504, 429, 401, 400, 404].map(isRetryableStatus),
                     [true, true, true, true, true, false, false, false]);
  });

  test("network failures are retried a bounded number of times, then a NetworkError", async () => {
    sleeps.length = 0;
    let attempts = 0;
    const down = async () => { attempts += 1; throw new TypeError("fetch failed"); };
    await assert.rejects(fetchWithRetry(down, "/x", {}, { retries: 3, sleep, random: () => 0.5 }), NetworkError);
    assert.equal(attempts, 4);
    assert.deepEqual(sleeps, [375, 750, 1500]);
  });

  test("a 4xx is returned at once; a 503 with Retry-After waits as asked and then succeeds", async () => {
    sleeps.length = 0;
    const answers = [() => problem(503, "unavailable", { "Retry-After": "2" }), () => new Response("ok")];
    const response = await fetchWithRetry(async () => answers.shift()(), "/x", {}, { sleep });
    assert.equal(await response.text(), "ok");
    assert.deepEqual(sleeps, [2_000]);
    const forbidden = await fetchWithRetry(async () => problem(403, "forbidden"), "/x", {}, { sleep });
    assert.equal(forbidden.status, 403);
  });

  test("a Retry-After longer than the call may wait is handed back, not slept on", async () => {
    sleeps.length = 0;
    const response = await fetchWithRetry(async () => problem(503, "unavailable", { "Retry-After": "120" }), "/x", {}, { sleep });
    assert.equal(response.status, 503);
    assert.deepEqual(sleeps, []);
  });

  test("an abort is not retried", async () => {
    let attempts = 0;
    const aborted = async () => { attempts += 1; throw new DOMException("aborted", "AbortError"); };
    await assert.rejects(fetchWithRetry(aborted, "/x", {}, { sleep }), { name: "AbortError" });
    assert.equal(attempts, 1);
  });
});

describe("errors", () => {
  test("a problem document is read without consuming the response", async () => {
    const response = problem(422, "validation_failed");
    const error = await ProblemError.from(response);
    assert.equal(error.code, "validation_failed");
    assert.equal((await response.json()).code, "validation_failed");
    const plain = await readProblem(new Response("<html>", { status: 502, statusText: "Bad Gateway" }));
    assert.equal(plain.code, "http_error");
  });
});

describe("session store", () => {
  test("publishes frozen snapshots to subscribers until they unsubscribe, and keeps the last MAX_LOG entries", () => {
    const store = new SessionStore({ status: "restoring" }, { now: () => 42 });
    const seen = [];
    const stop = store.subscribe((state) => seen.push(state.status));
    store.publish({ status: "signed-in" });
    stop();
    store.publish({ status: "signed-out" });
    assert.deepEqual(seen, ["signed-in"]);
    assert.ok(Object.isFrozen(store.state));
    for (let i = 0; i < MAX_LOG + 5; i += 1) store.emit("info", `entry ${i}`);
    assert.equal(store.getLog().length, MAX_LOG);
    assert.equal(store.getLog()[0].text, "entry 5");
  });

  test("a throwing listener does not stop the others", () => {
    const store = new SessionStore({ status: "restoring" });
    const seen = [];
    const original = console.error;
    console.error = () => {};
    try {
      store.subscribe(() => { throw new Error("bug in a view"); });
      store.subscribe((state) => seen.push(state.status));
      store.publish({ status: "signed-in" });
    } finally {
      console.error = original;
    }
    assert.deepEqual(seen, ["signed-in"]);
  });
});

describe("tab coordinator", () => {
  test("the lock runs tasks one at a time", async () => {
    const locks = new FakeLocks();
    const clock = new FakeClock();
    const tabs = new TabCoordinator({ locks, Channel: null, settleMs: 0, setTimeout: clock.setTimeout.bind(clock),
                                      clearTimeout: clock.clearTimeout.bind(clock) });
    let inside = 0;
    let most = 0;
    const task = async () => { inside += 1; most = Math.max(most, inside); await flush(1); inside -= 1; };
    await Promise.all([tabs.withLock(task), tabs.withLock(task), tabs.withLock(task)]);
    assert.equal(most, 1);
  });

  test("a lock not granted within lockTimeoutMs is withdrawn (AbortSignal) and the task runs without it", async () => {
    const locks = new FakeLocks();
    const clock = new FakeClock();
    const timeouts = [];
    const tabs = new TabCoordinator({ locks, Channel: null, lockTimeoutMs: 3_000, onLockTimeout: (e) => timeouts.push(e),
                                      setTimeout: clock.setTimeout.bind(clock), clearTimeout: clock.clearTimeout.bind(clock) });
    let thaw;
    locks.request("silent-auth:session", () => new Promise((resolve) => { thaw = resolve; }));
    let ran = false;
    const result = tabs.withLock(async () => { ran = true; return "done"; });
    await clock.advance(2_999);
    assert.equal(ran, false);
    await clock.advance(1);
    assert.equal(await result, "done");
    assert.ok(timeouts[0] instanceof LockTimeoutError);
    thaw();
    await flush();
    assert.equal(locks.held, 0, "the withdrawn request never takes the lock later");
  });

  test("messages reach the other tabs, not the sender", async () => {
    const { BroadcastChannel } = fakeChannels();
    const got = { a: [], b: [] };
    const a = new TabCoordinator({ locks: null, Channel: BroadcastChannel, onMessage: (m) => got.a.push(m) });
    const b = new TabCoordinator({ locks: null, Channel: BroadcastChannel, onMessage: (m) => got.b.push(m) });
    await a.withLock(async (share) => share({ type: "hello" }));
    await flush();
    assert.deepEqual(got, { a: [], b: [{ type: "hello" }] });
    a.close();
    b.close();
    a.post({ type: "after close" }); // a closed channel is quietly ignored
  });
});

describe("wake watcher", () => {
  function watcher(options = {}) {
    const clock = new FakeClock();
    const target = new EventTarget();
    const document = new EventTarget();
    document.visibilityState = "visible";
    const reasons = [];
    const watch = new WakeWatcher({ onWake: (reason) => reasons.push(reason), target, document, now: clock.now,
                                    setInterval: clock.setInterval.bind(clock), clearInterval: clock.clearInterval.bind(clock),
                                    intervalMs: 10_000, lateMs: 10_000, ...options });
    return { clock, target, document, reasons, watch };
  }

  test("visible again, online and pageshow from the back-forward cache wake the client; hidden does not", () => {
    const { target, document, reasons, watch } = watcher();
    document.visibilityState = "hidden";
    document.dispatchEvent(new Event("visibilitychange"));
    document.visibilityState = "visible";
    document.dispatchEvent(new Event("visibilitychange"));
    target.dispatchEvent(new Event("online"));
    target.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: false }));
    target.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: true }));
    assert.deepEqual(reasons, ["the page is visible again", "the network is back",
                               "the page came back from the back-forward cache"]);
    watch.close();
    target.dispatchEvent(new Event("online"));
    assert.equal(reasons.length, 3, "closed: no more wake-ups");
  });

  test("a heartbeat on time is quiet; one that fires late (sleep) wakes", async () => {
    const { clock, reasons, watch } = watcher();
    await clock.advance(60_000);
    assert.deepEqual(reasons, []);
    clock.sleep(600_000);
    await clock.advance(10_000);
    assert.equal(reasons.length, 1);
    assert.match(reasons[0], /^a timer fired 590 s late/);
    watch.close();
  });
});

describe("refresh timers", async () => {
  const { RefreshTimers } = await import("../src/refresh-timers.js");

  test("retrying later backs off with jitter up to a minute, honours Retry-After, and resets on success", async () => {
    const clock = new FakeClock();
    const timers = new RefreshTimers({ timers: clock, random: () => 0.5 });
    const delays = Array.from({ length: 7 }, () => timers.retryLater(null, () => {}));
    assert.deepEqual(delays, [1_500, 3_000, 6_000, 12_000, 24_000, 45_000, 45_000]);
    assert.equal(clock.pending.length, 1, "one retry timer at a time");
    assert.equal(timers.retryLater(30_000, () => {}), 30_000, "Retry-After wins");
    timers.succeeded();
    assert.equal(clock.pending.length, 0);
    let ran = 0;
    assert.equal(timers.retryLater(null, () => { ran += 1; }), 1_500, "back to the first step");
    await clock.advance(1_500);
    assert.equal(ran, 1);
  });

  test("a new refresh-ahead time replaces the old one, and cancel stops both timers", async () => {
    const clock = new FakeClock();
    const timers = new RefreshTimers({ timers: clock });
    const ran = [];
    timers.ahead(5_000, () => ran.push("first"));
    timers.ahead(-100, () => ran.push("second")); // overdue: runs at once
    timers.retryLater(1_000, () => ran.push("retry"));
    timers.cancel();
    await clock.advance(10_000);
    assert.deepEqual(ran, []);
    timers.ahead(-100, () => ran.push("overdue"));
    await clock.advance(0);
    assert.deepEqual(ran, ["overdue"]);
  });
});

describe("bearer request", async () => {
  const { describeRequest, sentAuthorization, unauthorizedOutcome, withBearer } = await import("../src/bearer-request.js");

  test("only token_expired and invalid_token renew; token_revoked ends the session; the rest is final", () => {
    assert.deepEqual(["token_expired", "invalid_token", "token_revoked", "token_missing", "invalid_credentials", null]
      .map(unauthorizedOutcome), ["renew", "renew", "revoked", "final", "final", "final"]);
  });

  test("the token is added to the caller's headers; the caller's own Authorization is noticed", () => {
    const init = withBearer("/x", { method: "POST", headers: { "X-Custom": "kept" } }, "abc");
    assert.equal(init.headers.get("Authorization"), "Bearer abc");
    assert.equal(init.headers.get("X-Custom"), "kept");
    assert.equal(init.method, "POST");
    assert.equal(withBearer("/x", {}, null).headers.has("Authorization"), false);
    assert.equal(sentAuthorization("/x", { headers: { authorization: "Bearer mine" } }), true);
    assert.equal(sentAuthorization(new Request("http://h/x", { headers: { Authorization: "Bearer r" } })), true);
    assert.equal(sentAuthorization("/x"), false);
  });

  test("a call is described by method and path", () => {
    assert.equal(describeRequest("/api/boards", { method: "post" }), "POST /api/boards");
    assert.equal(describeRequest(new Request("http://h.example/api/x?y=1")), "GET http://h.example/api/x?y=1");
  });
});
