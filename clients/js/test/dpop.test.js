// DPoP (RFC 9449): the proofs, checked with Node's WebCrypto, and the client's use of them against
// the fake server (which binds a session to its login proof's key, as auth does).
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import { DpopKeys, TokenClient, jwkThumbprint } from "../src/index.js";
import { MemoryKeyStore, browserProfile, problem, verifyProof } from "./fakes.js";

let profile;
afterEach(() => profile?.dispose());

async function boundTab(options = {}) {
  const keys = new MemoryKeyStore();
  profile = browserProfile({ keys });
  const client = await profile.tab(TokenClient, options);
  return { client, keys, ...profile };
}

const texts = (client) => client.getLog().map((entry) => entry.text);

describe("proofs", () => {
  test("a proof verifies with its jwk and has exactly the header and claims RFC 9449 asks for", async () => {
    const keys = new DpopKeys({ store: new MemoryKeyStore() });
    const key = await keys.create();
    assert.equal(key.pair.privateKey.extractable, false);
    const now = Date.UTC(2026, 10, 27, 12, 0, 0, 750);
    const proof = await key.proof({ htm: "post", htu: "https://app.example/api/auth/refresh?x=1#f", now });
    const { header, claims, jkt } = await verifyProof(proof, { htm: "POST", htu: "https://app.example/api/auth/refresh" });
    assert.deepEqual(Object.keys(header), ["typ", "alg", "jwk"]);
    assert.deepEqual(Object.keys(header.jwk).sort(), ["crv", "kty", "x", "y"]);
    assert.equal(header.jwk.crv, "P-256");
    assert.deepEqual(Object.keys(claims).sort(), ["htm", "htu", "iat", "jti"]);
    assert.equal(claims.iat, Math.floor(now / 1000));
    assert.equal(jkt, key.thumbprint);
    assert.doesNotMatch(proof, /=/);
    const again = await key.proof({ htm: "POST", htu: "https://app.example/api/auth/refresh", now });
    assert.notEqual(JSON.parse(Buffer.from(again.split(".")[1], "base64url")).jti, claims.jti);
  });

  test("nonce and ath are claimed when given; ath is the access token's SHA-256", async () => {
    const key = await new DpopKeys({ store: new MemoryKeyStore() }).create();
    const proof = await key.proof({ htm: "GET", htu: "http://localhost/api/profiles/me", nonce: "n1", accessToken: "abc" });
    const { claims } = await verifyProof(proof, { htm: "GET", htu: "http://localhost/api/profiles/me" });
    assert.equal(claims.nonce, "n1");
    assert.equal(claims.ath, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"); // SHA-256("abc"), FIPS 180-2's example
  });

  test("the thumbprint is RFC 7638's (its EC example, computed independently)", async () => {
    const jwk = { kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                  y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" };
    const digest = await crypto.subtle.digest("SHA-256",
      Buffer.from(`{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`));
    assert.equal(await jwkThumbprint({ y: jwk.y, x: jwk.x, kty: "EC", crv: "P-256", d: "secret" }),
                 Buffer.from(digest).toString("base64url"));
  });
});

describe("the client with DPoP", () => {
  test("login, refresh and logout each send a new proof of one key; logout deletes the key", async () => {
    const { client, keys, server, clock } = await boundTab();
    await client.login({ email: "u@example.com", password: "pw" });
    assert.ok(keys.pair, "the key is kept");
    const state = client.getSnapshot();
    const session = server.sessions.get(state.sessionId);
    assert.equal(session.jkt, state.keyThumbprint);
    assert.ok(state.keyThumbprint);
    await clock.advance(61_000);
    assert.equal((await client.fetch("/api/profiles/me")).status, 200);
    await client.logout();
    assert.equal(keys.pair, null, "the key is deleted at logout");
    assert.equal(session.revoked, true);
    const proofs = ["/api/auth/login", "/api/auth/refresh", "/api/auth/logout"].map((path) => server.calls_to(path)[0].dpop);
    assert.ok(proofs.every(Boolean));
    assert.equal(new Set(proofs).size, 3);
    assert.equal(server.calls_to("/api/profiles/me")[0].dpop, null, "a Bearer token needs no proof");
  });

  test("a second tab and a reload refresh with the kept key", async () => {
    const { client, server } = await boundTab();
    await client.login({ email: "u@example.com", password: "pw" });
    const reloaded = await profile.tab(TokenClient);
    await reloaded.restore();
    assert.equal(reloaded.getSnapshot().status, "signed-in");
    assert.equal(reloaded.getSnapshot().keyThumbprint, client.getSnapshot().keyThumbprint);
    assert.equal(server.refreshes, 1);
  });

  test("use_dpop_nonce: signed again once with the server's nonce, which is then kept", async () => {
    const { client, server, clock } = await boundTab();
    server.nonce = "nonce-1";
    await client.login({ email: "u@example.com", password: "pw" });
    assert.equal(server.calls_to("/api/auth/login").length, 2);
    assert.ok(texts(client).includes("the server asked for a DPoP nonce → signed again with it"));
    await clock.advance(61_000);
    assert.equal((await client.fetch("/api/profiles/me")).status, 200);
    assert.equal(server.refreshes, 1, "the kept nonce is used at once");
    server.nonce = "nonce-2";
    await clock.advance(61_000);
    assert.equal((await client.fetch("/api/profiles/me")).status, 200);
    assert.equal(server.refreshes, 3, "one retry with the new nonce");
  });

  test("use_dpop_nonce twice in a row is final: no loop", async () => {
    const { client, server } = await boundTab();
    server.nonce = "nonce-1";
    server.login = () => problem(401, "use_dpop_nonce", { "DPoP-Nonce": "always-another" });
    await assert.rejects(client.login({ email: "u@example.com", password: "pw" }), { code: "use_dpop_nonce" });
    assert.equal(server.calls_to("/api/auth/login").length, 2);
  });

  test("invalid_dpop_proof from refresh ends the session, without a loop", async () => {
    const { client, server, clock, keys } = await boundTab();
    await client.login({ email: "u@example.com", password: "pw" });
    keys.pair = (await new DpopKeys({ store: new MemoryKeyStore() }).create()).pair; // another key
    await clock.advance(61_000);
    assert.equal((await client.fetch("/api/profiles/me")).status, 401);
    await clock.advance(120_000);
    assert.equal(client.getSnapshot().status, "signed-out");
    assert.equal(server.refreshes, 1);
  });

  test("without WebCrypto or IndexedDB: an unbound session, and the state says why", async () => {
    for (const [dpop, missing] of [[{ crypto: {}, store: new MemoryKeyStore() }, "no WebCrypto"], [{ store: null }, "no IndexedDB"]]) {
      profile = browserProfile();
      const client = await profile.tab(TokenClient, { dpop });
      assert.equal(client.getSnapshot().dpop, missing);
      await client.login({ email: "u@example.com", password: "pw" });
      assert.equal(client.getSnapshot().status, "signed-in");
      assert.equal(client.getSnapshot().keyThumbprint, null);
      assert.equal(profile.server.calls_to("/api/auth/login")[0].dpop, null);
      assert.ok(texts(client).includes(`${missing} in this browser → the session is not bound to it`));
      profile.dispose();
    }
  });

  test("a login whose proof the server refuses logs in unbound", async () => {
    const { client, server, keys } = await boundTab({ origin: "http://127.0.0.1" }); // not the server's origin
    await client.login({ email: "u@example.com", password: "pw" });
    assert.equal(client.getSnapshot().status, "signed-in");
    assert.equal(client.getSnapshot().keyThumbprint, null);
    assert.equal(keys.pair, null);
    assert.equal(server.calls_to("/api/auth/login").length, 2);
  });

  test("DPoP-bound access tokens: Authorization: DPoP and a proof with ath on API calls", async () => {
    const { client, server, clock } = await boundTab();
    server.tokenType = "DPoP";
    await client.login({ email: "u@example.com", password: "pw" });
    assert.equal((await client.fetch("/api/profiles/me?x=1")).status, 200);
    const [call] = server.calls_to("/api/profiles/me");
    assert.match(call.auth, /^DPoP /);
    await clock.advance(61_000);
    assert.equal((await client.fetch("/api/profiles/me", { method: "post" })).status, 200);
    assert.equal(server.refreshes, 1);
  });
});
