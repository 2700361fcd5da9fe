// The adapters in Node against the fake server behind a real HTTP listener: React's
// useSyncExternalStore, an axios instance, and an Apollo Client with its HttpLink.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";

import { ApolloClient, HttpLink, InMemoryCache, from, gql } from "@apollo/client/core/index.js";
import axios from "axios";
import React from "react";
import TestRenderer from "react-test-renderer";

import { createAuthLink } from "../adapters/apollo.js";
import { attachTokenClient } from "../adapters/axios.js";
import { useSession } from "../adapters/react.js";
import { TokenClient } from "../src/index.js";
import { FakeClock, FakeServer, MemoryKeyStore, verifyProof } from "./fakes.js";

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

let listener;
let base;
let server;
let clock;

before(async () => {
  listener = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = chunks.length ? Buffer.concat(chunks).toString() : undefined;
    const init = { method: req.method, headers: req.headers, body: req.method === "GET" ? undefined : body };
    // The URL as the client sent it: a DPoP proof's `htu` names it.
    let answer = await server.fetch(`${base}${req.url}`, init);
    if (req.url === "/graphql" && answer.status === 200) {
      const { sid } = await answer.json();
      answer = Response.json({ data: { me: { __typename: "User", id: "u1", session: sid } } });
    }
    res.writeHead(answer.status, Object.fromEntries(answer.headers));
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  await new Promise((resolve) => listener.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${listener.address().port}`;
});

after(() => listener.close());

const expired = () => new Response(JSON.stringify({ code: "token_expired", status: 401 }), { status: 401 });

/** The next `n` API calls answer 401 token_expired (as if the server's clock had moved on). */
function expireNext(n) {
  const real = FakeServer.prototype.api.bind(server);
  server.api = (request) => (n-- > 0 ? expired() : real(request));
}

async function signedIn({ bound = false } = {}) {
  clock = new FakeClock();
  server = new FakeServer(clock, { ttl: 60 });
  // Bound: a DPoP key (kept in memory here, in IndexedDB in a browser) and ACCESS_TOKEN_BINDING=dpop.
  if (bound) server.tokenType = "DPoP";
  const client = new TokenClient({ fetch: (url, init) => fetch(new URL(url, base), init), now: clock.now, timers: clock,
                                   locks: null, BroadcastChannel: null, wake: false, refreshAhead: 0,
                                   ...(bound ? { dpop: { store: new MemoryKeyStore() }, origin: base } : {}) });
  await client.login({ email: "u@example.com", password: "pw" });
  return client;
}

describe("React useSession", () => {
  test("renders the snapshot and re-renders on login, refresh and logout", async () => {
    clock = new FakeClock();
    server = new FakeServer(clock);
    const client = new TokenClient({ fetch: (url, init) => fetch(new URL(url, base), init), now: clock.now, timers: clock,
                                     locks: null, BroadcastChannel: null, wake: false });
    const renders = [];
    function Who() {
      const state = useSession(client);
      renders.push(state);
      return React.createElement("p", null, state.status === "signed-in" ? `hello ${state.user.name}` : state.status);
    }
    let root;
    TestRenderer.act(() => { root = TestRenderer.create(React.createElement(Who)); });
    assert.equal(root.toJSON().children[0], "restoring");
    await TestRenderer.act(() => client.login({ email: "u@example.com", password: "pw" }));
    assert.equal(root.toJSON().children[0], "hello U");
    const before = renders.at(-1);
    await TestRenderer.act(() => client.refreshNow());
    assert.notEqual(renders.at(-1), before, "a refresh is a new snapshot");
    await TestRenderer.act(() => client.logout());
    assert.equal(root.toJSON().children[0], "signed-out");
    TestRenderer.act(() => root.unmount());
    client.dispose();
  });
});

describe("axios interceptor", () => {
  test("sends the token; a 401 token_expired refreshes once and re-sends once", async () => {
    const client = await signedIn();
    const api = axios.create({ baseURL: base });
    const detach = attachTokenClient(api, client);
    assert.equal((await api.get("/api/profiles/me")).status, 200);
    expireNext(2);
    const [a, b] = await Promise.all([api.get("/api/profiles/me"), api.post("/api/boards", { title: "t" })]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    assert.equal(server.refreshes, 1, "calls failing together share one refresh");
    assert.equal(server.calls_to("/api/boards").length, 2);
    assert.equal(server.calls_to("/api/boards")[1].body, '{"title":"t"}', "the body is re-sent unchanged");
    detach();
    client.dispose();
  });

  test("a second 401 is final, token_revoked signs out, and the caller's own header is left alone", async () => {
    const client = await signedIn();
    const api = axios.create({ baseURL: base });
    attachTokenClient(api, client);
    const realApi = server.api.bind(server);
    server.api = () => new Response(JSON.stringify({ code: "token_expired", status: 401 }), { status: 401 });
    await assert.rejects(api.get("/api/profiles/me"), (error) => error.response.status === 401);
    assert.equal(server.refreshes, 1);
    assert.equal(server.calls_to("/api/profiles/me").length, 2);
    await assert.rejects(api.get("/api/profiles/me", { headers: { Authorization: "Bearer mine" } }));
    assert.equal(server.refreshes, 1);
    assert.equal(server.calls_to("/api/profiles/me").at(-1).auth, "Bearer mine");
    server.api = realApi;
    server.sessions.get("s1").revoked = true;
    await assert.rejects(api.get("/api/profiles/me"), (error) => error.response.data.code === "token_revoked");
    assert.equal(client.getSnapshot().status, "signed-out");
    client.dispose();
  });
});

describe("every adapter (getFreshToken)", () => {
  test("a token expired by the clock (after sleep) is renewed before the call: no 401 on the wire", async () => {
    const client = await signedIn();
    const api = axios.create({ baseURL: base });
    attachTokenClient(api, client);
    await clock.advance(61_000);
    assert.equal((await api.get("/api/profiles/me")).status, 200);
    assert.equal(server.refreshes, 1);
    assert.equal(server.calls_to("/api/profiles/me").length, 1);
    client.dispose();
  });
});

describe("Apollo link", () => {
  const ME = gql`query Me { me { id session } }`;

  function apollo(client) {
    return new ApolloClient({
      link: from([createAuthLink(client), new HttpLink({ uri: `${base}/graphql`, fetch })]),
      cache: new InMemoryCache(),
      defaultOptions: { query: { fetchPolicy: "network-only" } },
    });
  }

  test("a 401 token_expired restores the access token and re-sends the operation once", async () => {
    const client = await signedIn();
    const graph = apollo(client);
    assert.equal((await graph.query({ query: ME })).data.me.session, "s1");
    expireNext(1);
    const result = await graph.query({ query: ME });
    assert.equal(result.data.me.id, "u1");
    assert.equal(server.refreshes, 1);
    const sent = server.calls_to("/graphql");
    assert.equal(sent.length, 3);
    assert.notEqual(sent[1].auth, sent[2].auth, "the retry carries the new token");
    graph.stop();
    client.dispose();
  });

  test("a second 401 is final (no loop), and other errors pass through untouched", async () => {
    const client = await signedIn();
    const graph = apollo(client);
    server.api = () => new Response(JSON.stringify({ code: "token_expired", status: 401 }), { status: 401 });
    await assert.rejects(graph.query({ query: ME }), (error) => error.networkError?.statusCode === 401);
    assert.equal(server.refreshes, 1);
    assert.equal(server.calls_to("/graphql").length, 2);
    server.api = () => new Response(JSON.stringify({ code: "forbidden", status: 403 }), { status: 403 });
    await assert.rejects(graph.query({ query: ME }), (error) => error.networkError?.statusCode === 403);
    assert.equal(server.refreshes, 1);
    graph.stop();
    client.dispose();
  });
});

const sha256 = async (text) => Buffer.from(await crypto.subtle.digest("SHA-256", Buffer.from(text))).toString("base64url");

/**
 * The call went out as a DPoP-bound token must (ACCESS_TOKEN_BINDING=dpop): `Authorization: DPoP
 * <token>`, and a proof signed by the session's key whose `htm`, `htu` (no query) and `ath` (the
 * token's hash) name this request and this token. Returns {token, claims}.
 */
async function assertBoundCall(call, client, { htm, htu }) {
  assert.match(call.auth ?? "", /^DPoP [^ ]+$/, `${call.method} ${call.path} is sent with the DPoP scheme`);
  const token = call.auth.slice("DPoP ".length);
  assert.ok(call.dpop, "with a DPoP proof");
  const { claims, jkt } = await verifyProof(call.dpop, { htm, htu });
  assert.equal(claims.ath, await sha256(token), "the proof's ath is the hash of the token sent");
  assert.equal(jkt, client.getSnapshot().keyThumbprint, "signed by the session's key");
  return { token, claims };
}

describe("DPoP-bound access tokens (ACCESS_TOKEN_BINDING=dpop)", () => {
  test("axios: DPoP scheme and a proof with ath, htm, htu for each call; after token_expired a new token and proof", async () => {
    const client = await signedIn({ bound: true });
    assert.equal(client.getSnapshot().keyThumbprint?.length, 43, "the session is bound");
    const api = axios.create({ baseURL: `${base}/api` }); // htu: the URL axios sends to (baseURL + url)
    attachTokenClient(api, client);
    assert.equal((await api.get("/profiles/me", { params: { x: 1 } })).status, 200);
    assert.equal((await api.post("/boards", { title: "t" })).status, 200);
    const [me] = server.calls_to("/api/profiles/me");
    const [board] = server.calls_to("/api/boards");
    const first = await assertBoundCall(me, client, { htm: "GET", htu: `${base}/api/profiles/me` });
    const second = await assertBoundCall(board, client, { htm: "POST", htu: `${base}/api/boards` });
    assert.notEqual(first.claims.jti, second.claims.jti, "a new proof for every request");
    assert.equal(board.body, '{"title":"t"}');

    server.skewMs = 61_000; // the server's clock says the token expired; this one does not know yet
    assert.equal((await api.get("/profiles/me")).status, 200);
    assert.equal(server.refreshes, 1);
    const [, expired, retried] = server.calls_to("/api/profiles/me");
    const before = await assertBoundCall(expired, client, { htm: "GET", htu: `${base}/api/profiles/me` });
    const after = await assertBoundCall(retried, client, { htm: "GET", htu: `${base}/api/profiles/me` });
    assert.notEqual(after.token, before.token, "the retry carries the new token, and a proof of it");
    assert.notEqual(after.claims.jti, before.claims.jti);
    client.dispose();
  });

  test("axios: a resource server's 401 use_dpop_nonce is answered once with its nonce; a second is final", async () => {
    const client = await signedIn({ bound: true });
    const api = axios.create({ baseURL: base });
    attachTokenClient(api, client);
    server.apiNonce = "nonce-1";
    assert.equal((await api.get("/api/profiles/me")).status, 200);
    const [asked, answered] = server.calls_to("/api/profiles/me");
    assert.equal((await assertBoundCall(asked, client, { htm: "GET", htu: `${base}/api/profiles/me` })).claims.nonce, undefined);
    assert.equal((await assertBoundCall(answered, client, { htm: "GET", htu: `${base}/api/profiles/me` })).claims.nonce, "nonce-1");
    assert.equal((await api.get("/api/profiles/me")).status, 200, "the nonce is kept for the next proofs");
    assert.equal(server.calls_to("/api/profiles/me").length, 3);

    const realApi = server.api.bind(server);
    server.api = async (request) => { server.apiNonce = `${server.apiNonce}+`; return realApi(request); };
    await assert.rejects(api.get("/api/profiles/me"), (error) => error.response.data.code === "use_dpop_nonce");
    assert.equal(server.calls_to("/api/profiles/me").length, 5, "one retry with the nonce, no loop");
    assert.equal(server.refreshes, 0);
    client.dispose();
  });

  function apollo(client) {
    return new ApolloClient({
      link: from([createAuthLink(client, { uri: `${base}/graphql` }), new HttpLink({ uri: `${base}/graphql`, fetch })]),
      cache: new InMemoryCache(),
      defaultOptions: { query: { fetchPolicy: "network-only" } },
    });
  }
  const ME = gql`query Me { me { id session } }`;

  test("Apollo: DPoP scheme and a proof with ath, htm, htu; after token_expired a new token and proof", async () => {
    const client = await signedIn({ bound: true });
    const graph = apollo(client);
    assert.equal((await graph.query({ query: ME })).data.me.session, "s1");
    server.skewMs = 61_000;
    assert.equal((await graph.query({ query: ME })).data.me.id, "u1");
    assert.equal(server.refreshes, 1);
    const [first, expired, retried] = server.calls_to("/graphql");
    await assertBoundCall(first, client, { htm: "POST", htu: `${base}/graphql` });
    const before = await assertBoundCall(expired, client, { htm: "POST", htu: `${base}/graphql` });
    const after = await assertBoundCall(retried, client, { htm: "POST", htu: `${base}/graphql` });
    assert.notEqual(after.token, before.token);
    assert.notEqual(after.claims.jti, before.claims.jti);
    graph.stop();
    client.dispose();
  });

  test("Apollo: a resource server's 401 use_dpop_nonce is answered once with its nonce; a second is final", async () => {
    const client = await signedIn({ bound: true });
    const graph = apollo(client);
    server.apiNonce = "nonce-1";
    assert.equal((await graph.query({ query: ME })).data.me.id, "u1");
    const [asked, answered] = server.calls_to("/graphql");
    assert.equal((await assertBoundCall(asked, client, { htm: "POST", htu: `${base}/graphql` })).claims.nonce, undefined);
    assert.equal((await assertBoundCall(answered, client, { htm: "POST", htu: `${base}/graphql` })).claims.nonce, "nonce-1");
    const realApi = server.api.bind(server);
    server.api = async (request) => { server.apiNonce = `${server.apiNonce}+`; return realApi(request); };
    await assert.rejects(graph.query({ query: ME }), (error) => error.networkError?.statusCode === 401);
    assert.equal(server.calls_to("/graphql").length, 4, "one retry with the nonce, no loop");
    graph.stop();
    client.dispose();
  });

  test("authorizationHeaders: Bearer for an unbound token, {} when signed out", async () => {
    const unbound = await signedIn();
    const headers = await unbound.authorizationHeaders("GET", "/api/profiles/me");
    assert.deepEqual(Object.keys(headers), ["Authorization"]);
    assert.match(headers.Authorization, /^Bearer /);
    await unbound.logout();
    assert.deepEqual(await unbound.authorizationHeaders("GET", "/api/profiles/me"), {});
    unbound.dispose();
  });
});
