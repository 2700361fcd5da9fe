// The TokenClient's rules and its robustness, against the fake server, clock, locks and channel.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import { NetworkError, ProblemError, TokenClient } from "../src/index.js";
import { browserProfile, flush, problem } from "./fakes.js";

let profile;
afterEach(() => profile?.dispose());

async function signedIn(options = {}, profileOptions = {}) {
  profile = browserProfile(profileOptions);
  const client = await profile.tab(TokenClient, options);
  await client.login({ email: "u@example.com", password: "pw" });
  return { client, ...profile };
}

const texts = (client) => client.getLog().map((entry) => entry.text);

describe("retry once", () => {
  test("an expired token is refreshed once and the call retried once with the new token", async () => {
    const { client, clock, server } = await signedIn();
    await clock.advance(61_000);
    const response = await client.fetch("/api/profiles/me");
    assert.equal(response.status, 200);
    assert.equal(server.refreshes, 1);
    const [first, second] = server.calls_to("/api/profiles/me");
    assert.notEqual(first.auth, second.auth);
    assert.ok(texts(client).includes("access token expired → refreshed silently → retried GET /api/profiles/me ✓"));
  });

  test("a second 401 is final: no loop", async () => {
    const { client, server } = await signedIn();
    server.api = () => problem(401, "token_expired");
    const response = await client.fetch("/api/profiles/me");
    assert.equal(response.status, 401);
    assert.equal(server.refreshes, 1);
    assert.equal(server.calls_to("/api/profiles/me").length, 2);
  });

  test("calls failing together share one refresh", async () => {
    const { client, clock, server } = await signedIn();
    await clock.advance(61_000);
    const answers = await Promise.all(Array.from({ length: 5 }, () => client.fetch("/api/profiles/me")));
    assert.deepEqual(answers.map((r) => r.status), [200, 200, 200, 200, 200]);
    assert.equal(server.refreshes, 1);
  });

  test("token_revoked signs out without a refresh", async () => {
    const { client, server } = await signedIn();
    server.sessions.get("s1").revoked = true;
    const response = await client.fetch("/api/profiles/me");
    assert.equal(response.status, 401);
    assert.equal(server.refreshes, 0);
    assert.equal(client.getSnapshot().status, "signed-out");
  });
});

describe("network failure during a refresh is not a logout", () => {
  test("the session stays, the state shows offline, the call fails with a NetworkError", async () => {
    const { client, clock, server } = await signedIn();
    await clock.advance(61_000);
    server.offline = true;
    const call = client.fetch("/api/profiles/me");
    const failed = assert.rejects(call, (error) => error instanceof NetworkError && error instanceof TypeError);
    await clock.advance(1_000); // the API call fails at once: no refresh was needed to learn that
    await failed;
    const state = client.getSnapshot();
    assert.equal(state.status, "signed-in");
    assert.equal(state.offline, true);
    assert.equal(state.user.name, "U");
  });

  test("retries are bounded, spaced by backoff with jitter, and the client refreshes when the network is back", async () => {
    const { client, clock, server, windows } = await signedIn();
    await clock.advance(61_000);
    // The API answers (token expired) but the refresh endpoint is unreachable.
    let refreshDown = true;
    const unreachable = () => { if (refreshDown) throw new TypeError("fetch failed"); return server.refresh(); };
    server.refreshAnswers.push(unreachable, unreachable, unreachable, unreachable);
    const call = client.fetch("/api/profiles/me");
    const failed = assert.rejects(call, NetworkError);
    await clock.advance(375 + 750 + 1500);
    await failed;
    const times = server.calls_to("/api/auth/refresh").map((c) => c.at);
    assert.equal(times.length, 4, "one attempt and three retries, then it stops");
    const gaps = times.slice(1).map((at, i) => at - times[i]);
    assert.deepEqual(gaps, [375, 750, 1500], "equal jitter at random()=0.5: 3/4 of each doubling step");
    assert.equal(client.getSnapshot().status, "signed-in");
    assert.equal(client.getSnapshot().offline, true);
    assert.ok(texts(client).includes("refresh failed: the network is unreachable → session kept, renewed when it is back"));
    // Back online: the `online` event renews at once.
    refreshDown = false;
    windows[0].window.dispatchEvent(new Event("online"));
    await clock.advance(0);
    assert.equal(server.refreshes, 5);
    assert.equal(client.getSnapshot().offline, false);
    assert.equal((await client.fetch("/api/profiles/me")).status, 200);
  });

  test("without an online event, the recovery timer tries again later, backing off", async () => {
    const { client, clock, server } = await signedIn();
    server.offline = true;
    await assert.rejects(Promise.all([client.refreshNow(), clock.advance(5_000)]), NetworkError);
    const before = server.refreshes;
    server.offline = false;
    await clock.advance(60_000);
    assert.equal(server.refreshes, before + 1, "one more attempt, not a stream of them");
    assert.equal(client.getSnapshot().offline, false);
    assert.equal(client.getSnapshot().status, "signed-in");
  });

  test("an answer lost after the server rotated is recovered by the retry within the reuse grace", async () => {
    const { client, clock, server } = await signedIn();
    server.loseNextRefreshAnswer = true;
    const renewed = client.refreshNow();
    await clock.advance(2_000);
    await renewed;
    assert.equal(server.reuse ?? 0, 0, "the retry presented the predecessor within the grace: no theft alarm");
    assert.equal(client.getSnapshot().status, "signed-in");
  });
});

describe("5xx and 503 with Retry-After", () => {
  test("a 503 is retried after the Retry-After it names, not treated as a logout", async () => {
    const { client, clock, server } = await signedIn();
    server.refreshAnswers.push(() => problem(503, "unavailable", { "Retry-After": "2" }));
    const renewed = client.refreshNow();
    await clock.advance(1_999);
    assert.equal(server.refreshes, 1, "not before Retry-After");
    await clock.advance(1);
    await renewed;
    assert.equal(server.refreshes, 2);
    assert.equal(client.getSnapshot().status, "signed-in");
  });

  test("a Retry-After too long to wait in the call fails the call, keeps the session, and comes back then", async () => {
    const { client, clock, server } = await signedIn();
    server.refreshAnswers.push(() => problem(503, "unavailable", { "Retry-After": "30" }));
    await assert.rejects(client.refreshNow(), (error) => error instanceof ProblemError && error.status === 503);
    assert.equal(client.getSnapshot().status, "signed-in");
    await clock.advance(29_000);
    assert.equal(server.refreshes, 1);
    await clock.advance(1_000);
    assert.equal(server.refreshes, 2);
  });

  test("a 500 on every attempt: bounded retries, then the error, still signed in", async () => {
    const { client, clock, server } = await signedIn();
    server.refreshAnswers.push(...Array.from({ length: 4 }, () => () => problem(500, "internal_error")));
    const renewed = assert.rejects(client.refreshNow(), ProblemError);
    await clock.advance(375 + 750 + 1500);
    await renewed;
    assert.equal(server.refreshes, 4);
    assert.equal(client.getSnapshot().status, "signed-in");
  });
});

describe("clock skew", () => {
  for (const [what, skewMs] of [["ten minutes fast", -600_000], ["ten minutes slow", 600_000]]) {
    test(`a clock ${what} causes no refresh loop and no expired-token failure`, async () => {
      profile = browserProfile();
      profile.server.skewMs = skewMs; // server time minus this machine's
      const client = await profile.tab(TokenClient, { refreshAhead: 10 });
      await client.login({ email: "u@example.com", password: "pw" });
      assert.ok(Math.abs(client.clockOffset - skewMs) <= 1_500, `measured ${client.clockOffset}`);
      const state = client.getSnapshot();
      assert.ok(Math.abs(state.expiresAt - (profile.clock.now() + 60_000)) <= 1_500, "expiry on this machine's clock");
      // One token lifetime passes in steps, with calls: one refresh ahead of each expiry, never a 401.
      for (let i = 0; i < 12; i += 1) {
        await profile.clock.advance(10_000);
        assert.equal((await client.fetch("/api/profiles/me")).status, 200);
      }
      assert.equal(profile.server.calls.filter((c) => c.path === "/api/profiles/me").length, 12, "no call was retried");
      assert.equal(profile.server.refreshes, 2, "one refresh per token lifetime, 10 s ahead");
    });
  }

  test("the offset is learned from the Date header when the token has no iat", async () => {
    const { ServerClock } = await import("../src/clock.js");
    const clock = new ServerClock({ now: () => 1_000_000 });
    clock.observe(Date.parse(new Date(1_000_000 + 300_000).toUTCString()), 1_000_000);
    assert.ok(Math.abs(clock.offset - 300_000) <= 1_000);
  });
});

describe("wake and visibility", () => {
  test("a page shown again after the token expired refreshes before the next call", async () => {
    const { client, clock, server, windows } = await signedIn();
    const { document } = windows[0];
    document.visibilityState = "hidden";
    document.dispatchEvent(new Event("visibilitychange"));
    await clock.advance(120_000);
    assert.equal(server.refreshes, 0, "nothing happens while hidden");
    document.visibilityState = "visible";
    document.dispatchEvent(new Event("visibilitychange"));
    const response = await client.fetch("/api/profiles/me"); // made at once, while the refresh is on its way
    assert.equal(response.status, 200);
    assert.equal(server.refreshes, 1);
    assert.equal(server.calls_to("/api/profiles/me").length, 1, "the call waited for the refresh: no 401, no retry");
  });

  test("a timer that fires late (the computer slept) refreshes at once", async () => {
    const { client, clock, server } = await signedIn();
    clock.sleep(3_600_000);
    await clock.advance(15_000); // the heartbeat fires, an hour late
    assert.equal(server.refreshes, 1);
    assert.ok(texts(client).some((t) => t.includes("s late (the computer slept?); the token has expired → refreshing before the next call")));
  });

  test("a page shown again with a valid token does nothing", async () => {
    const { clock, server, windows } = await signedIn();
    await clock.advance(5_000);
    windows[0].document.dispatchEvent(new Event("visibilitychange"));
    await clock.advance(0);
    assert.equal(server.refreshes, 0);
  });
});

describe("tabs", () => {
  test("a lost BroadcastChannel message costs one extra refresh, never a logout", async () => {
    profile = browserProfile({ graceMs: 0 }); // no grace: presenting an old cookie would end the session
    const first = await profile.tab(TokenClient);
    const second = await profile.tab(TokenClient);
    await first.login({ email: "u@example.com", password: "pw" });
    await profile.clock.advance(0);
    assert.equal(second.getSnapshot().status, "signed-in");
    await profile.clock.advance(61_000);
    profile.channels.control.drop = 1; // the first tab's new token never reaches the second
    assert.equal((await first.fetch("/api/profiles/me")).status, 200);
    assert.equal(profile.channels.control.lost, 1);
    assert.equal((await second.fetch("/api/profiles/me")).status, 200);
    assert.equal(profile.server.refreshes, 2, "the second tab refreshed once on its own");
    assert.equal(profile.server.reuse ?? 0, 0, "with the jar's current cookie");
    assert.equal(first.getSnapshot().status, "signed-in");
    assert.equal(second.getSnapshot().status, "signed-in");
  });

  test("a tab queued on the lock uses the token the other tab got", async () => {
    profile = browserProfile();
    const first = await profile.tab(TokenClient, { settleMs: 50 });
    const second = await profile.tab(TokenClient, { settleMs: 50 });
    const login = first.login({ email: "u@example.com", password: "pw" });
    await profile.clock.advance(100);
    await login;
    await profile.clock.advance(61_000);
    const calls = Promise.all([first.fetch("/api/profiles/me"), second.fetch("/api/profiles/me")]);
    await profile.clock.advance(100); // the winner keeps the lock settleMs after sharing its token
    const answers = await calls;
    assert.deepEqual(answers.map((r) => r.status), [200, 200]);
    assert.equal(profile.server.refreshes, 1);
    assert.ok(texts(second).some((t) => t.startsWith("access token expired → another tab refreshed → retried")));
  });

  test("a frozen tab holding the lock blocks the others only until the lock timeout", async () => {
    profile = browserProfile();
    const client = await profile.tab(TokenClient, { lockTimeoutMs: 5_000 });
    await client.login({ email: "u@example.com", password: "pw" });
    let thaw;
    profile.locks.request("silent-auth:session", () => new Promise((resolve) => { thaw = resolve; })); // frozen
    await profile.clock.advance(61_000);
    const call = client.fetch("/api/profiles/me");
    await profile.clock.advance(4_999);
    assert.equal(profile.server.refreshes, 0, "waits for the lock first");
    await profile.clock.advance(1);
    assert.equal((await call).status, 200);
    assert.equal(profile.server.refreshes, 1);
    assert.ok(texts(client).includes("another tab held the lock over 5 s (frozen?) → went ahead without it"));
    thaw();
  });

  test("logging out in one tab logs out the other", async () => {
    profile = browserProfile();
    const first = await profile.tab(TokenClient);
    const second = await profile.tab(TokenClient);
    await first.login({ email: "u@example.com", password: "pw" });
    await profile.clock.advance(0);
    await first.logout();
    await profile.clock.advance(0);
    assert.equal(second.getSnapshot().status, "signed-out");
    assert.equal(second.getSnapshot().reason, "You were logged out in another tab.");
  });
});

describe("snapshot", () => {
  test("restore without a session is quietly signed out", async () => {
    profile = browserProfile();
    const client = await profile.tab(TokenClient);
    const state = await client.restore();
    assert.equal(state.status, "signed-out");
    assert.equal(state.reason, null);
  });

  test("restore while offline stays restoring and restores when the network is back", async () => {
    profile = browserProfile();
    const seed = await profile.tab(TokenClient);
    await seed.login({ email: "u@example.com", password: "pw" });
    seed.dispose();
    const client = await profile.tab(TokenClient, { name: "other" });
    profile.server.offline = true;
    const restoring = assert.rejects(client.restore(), NetworkError);
    await profile.clock.advance(375 + 750 + 1500); // the attempts, not yet the recovery timer
    await restoring;
    assert.deepEqual([client.getSnapshot().status, client.getSnapshot().offline], ["restoring", true]);
    profile.server.offline = false;
    profile.windows[1].window.dispatchEvent(new Event("online"));
    await profile.clock.advance(0);
    assert.equal(client.getSnapshot().status, "signed-in");
    await flush();
  });

  test("the snapshot is replaced, never mutated, and subscribe/getSnapshot work unbound", async () => {
    const { client } = await signedIn();
    const { subscribe, getSnapshot } = client;
    const seen = [];
    const stop = subscribe((state) => seen.push(state));
    const before = getSnapshot();
    await client.refreshNow();
    stop();
    assert.ok(Object.isFrozen(before));
    assert.notEqual(getSnapshot(), before);
    assert.ok(seen.length >= 2);
  });
});

describe("calls during a refresh", () => {
  test("a refresh ahead of expiry delays no call; a call with an expired token waits for the refresh", async () => {
    const { client, clock, server } = await signedIn();
    let release;
    server.refreshAnswers.push(() => new Promise((resolve) => { release = () => resolve(server.refresh()); }));
    const refreshing = client.refreshNow(); // the token is still valid
    await clock.advance(0);
    assert.equal((await client.fetch("/api/profiles/me")).status, 200, "sent with the still-valid token at once");
    release();
    await refreshing;
    server.refreshAnswers.push(() => new Promise((resolve) => { release = () => resolve(server.refresh()); }));
    await clock.advance(61_000);
    const renewing = client.refreshNow();
    await clock.advance(0);
    const call = client.fetch("/api/profiles/me");
    await clock.advance(0);
    assert.equal(server.calls_to("/api/profiles/me").length, 1, "the expired token is not sent");
    release();
    await renewing;
    assert.equal((await call).status, 200);
    assert.equal(server.calls_to("/api/profiles/me").length, 2);
  });

  test("a call that gets an answer after a network failure clears offline", async () => {
    const { client, server } = await signedIn();
    server.offline = true;
    await assert.rejects(client.fetch("/api/profiles/me"), NetworkError);
    assert.equal(client.getSnapshot().offline, true);
    server.offline = false;
    assert.equal((await client.fetch("/api/profiles/me")).status, 200);
    assert.equal(client.getSnapshot().offline, false);
  });
});
