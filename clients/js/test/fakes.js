/**
 * Fakes for the unit tests: a clock with timers, an auth server with a cookie jar, Web Locks and
 * a BroadcastChannel that can lose messages. Each behaves like the real thing in what the client
 * relies on (a lock is held until its callback settles; a channel never echoes to its sender).
 */

/** Let every pending promise callback and I/O callback run. */
export async function flush(rounds = 5) {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** Time that moves only when told; timers fire in order as it moves. */
export class FakeClock {
  #timers = new Map();
  #next = 1;

  constructor(start = Date.UTC(2026, 10, 27, 12, 0, 0)) {
    this.time = start;
    this.now = () => this.time;
  }

  setTimeout(callback, ms = 0) {
    const id = this.#next++;
    this.#timers.set(id, { at: this.time + Math.max(0, ms), callback, every: null });
    return id;
  }

  clearTimeout(id) {
    this.#timers.delete(id);
  }

  setInterval(callback, ms) {
    const id = this.#next++;
    this.#timers.set(id, { at: this.time + ms, callback, every: ms });
    return id;
  }

  clearInterval(id) {
    this.#timers.delete(id);
  }

  get pending() {
    return [...this.#timers.values()].map((timer) => timer.at - this.time).sort((a, b) => a - b);
  }

  /** Move time forward by `ms`, firing each due timer at its own time, settling promises between. */
  async advance(ms) {
    const target = this.time + ms;
    await flush();
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, timer] = due;
      this.time = Math.max(this.time, timer.at);
      if (timer.every) timer.at += timer.every; else this.#timers.delete(id);
      timer.callback();
      await flush();
    }
    this.time = target;
    await flush();
  }

  /** The computer slept: time jumps and no timer runs meanwhile (they run late, on waking). */
  sleep(ms) {
    this.time += ms;
  }
}

/**
 * Check a DPoP proof the way RFC 9449 §4.3 does, with Node's WebCrypto: header exactly {typ, alg,
 * jwk}, the signature by that jwk, and the claims. Returns {header, claims, jkt}; throws on a bad one.
 */
export async function verifyProof(proof, { htm, htu }) {
  const [head, body, signature] = proof.split(".");
  const header = JSON.parse(Buffer.from(head, "base64url").toString());
  const claims = JSON.parse(Buffer.from(body, "base64url").toString());
  if (Object.keys(header).sort().join() !== "alg,jwk,typ" || header.typ !== "dpop+jwt" || header.alg !== "ES256") {
    throw new Error(`bad header ${JSON.stringify(header)}`);
  }
  if (Object.keys(header.jwk).sort().join() !== "crv,kty,x,y") throw new Error("jwk is not exactly a public EC key");
  const key = await crypto.subtle.importKey("jwk", header.jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  const raw = Buffer.from(signature, "base64url");
  if (raw.length !== 64) throw new Error("signature is not raw r||s");
  const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, raw, Buffer.from(`${head}.${body}`));
  if (!ok) throw new Error("signature does not verify");
  if (claims.htm !== htm || claims.htu !== htu) throw new Error(`wrong htm/htu ${claims.htm} ${claims.htu}`);
  if (typeof claims.jti !== "string" || !Number.isInteger(claims.iat)) throw new Error("no jti or iat");
  const { crv, kty, x, y } = header.jwk;
  const digest = await crypto.subtle.digest("SHA-256", Buffer.from(JSON.stringify({ crv, kty, x, y })));
  return { header, claims, jkt: Buffer.from(digest).toString("base64url") };
}

/** A key store in memory (IndexedDB's part, for Node): one per browser profile, shared by its tabs. */
export class MemoryKeyStore {
  pair = null;
  async load() { return this.pair; }
  async save(pair) { this.pair = pair; }
  async remove() { this.pair = null; }
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A JWT-shaped token (unsigned: the client never verifies, it only reads times and ids). */
export function makeToken(claims) {
  return `${b64({ alg: "ES256", typ: "JWT" })}.${b64(claims)}.sig`;
}

const json = (status, body, headers = {}) => new Response(JSON.stringify(body), {
  status, headers: { "Content-Type": status >= 400 ? "application/problem+json" : "application/json", ...headers },
});

export const problem = (status, code, headers = {}) =>
  json(status, { type: `urn:problem:${code}`, title: code, status, detail: `detail of ${code}`, code }, headers);

/**
 * The auth service and one API, as the browser sees them: one cookie jar shared by every client
 * (tab) that uses `server.fetch`. Refresh rotates the cookie; the predecessor presented again
 * within `graceMs` gets the current token (as REFRESH_REUSE_GRACE does), anything older ends the
 * session. The server's clock is the fake clock plus `skewMs` (a client clock that is off).
 */
export class FakeServer {
  constructor(clock, { ttl = 60, graceMs = 10_000 } = {}) {
    this.clock = clock;
    this.ttl = ttl;
    this.graceMs = graceMs;
    this.skewMs = 0;
    this.jar = null;              // the browser's refresh cookie
    this.sessions = new Map();    // sid -> {generation, rotatedAt, revoked}
    this.calls = [];
    this.offline = false;
    this.refreshAnswers = [];     // queued answers for refresh: () => Response (then the normal one)
    this.loseNextRefreshAnswer = false;
    this.issued = 0;
    this.nonce = null;            // when set, proofs must carry it (DPOP_NONCE=true)
    this.apiNonce = null;         // when set, the API wants it in proofs too (RFC 9449 §9; ours do not)
    this.seenJtis = new Set();
    this.tokenType = "Bearer";
    this.fetch = this.fetch.bind(this);
  }

  serverNow() {
    return this.clock.now() + this.skewMs;
  }

  calls_to(path) {
    return this.calls.filter((call) => call.path === path);
  }

  get refreshes() {
    return this.calls_to("/api/auth/refresh").length;
  }

  #tokenFor(sid) {
    this.issued += 1;
    const iat = Math.floor(this.serverNow() / 1000);
    // ACCESS_TOKEN_BINDING=dpop: a bound session's tokens carry its key's thumbprint (cnf.jkt).
    const jkt = this.tokenType === "DPoP" ? this.sessions.get(sid)?.jkt : null;
    const token = makeToken({ sub: "u1", sid, jti: `t${this.issued}`, iat, exp: iat + this.ttl, typ: "access",
                              ...(jkt ? { cnf: { jkt } } : {}) });
    return json(200, { access_token: token, token_type: this.tokenType, expires_in: this.ttl,
                       user: { id: "u1", email: "u@example.com", name: "U" } },
                { Date: new Date(this.serverNow()).toUTCString() });
  }

  login(proof = null) {
    const sid = `s${this.sessions.size + 1}`;
    this.sessions.set(sid, { generation: 0, rotatedAt: this.serverNow(), revoked: false, jkt: proof?.jkt ?? null });
    this.jar = `${sid}.0`;
    return this.#tokenFor(sid);
  }

  refresh(proof = null) {
    if (!this.jar) return problem(401, "refresh_token_missing");
    const [sid, generationText] = this.jar.split(".");
    const session = this.sessions.get(sid);
    const generation = Number(generationText);
    if (!session || session.revoked) return problem(401, "invalid_refresh_token");
    if (session.jkt && proof?.jkt !== session.jkt) return problem(401, "invalid_dpop_proof");
    if (generation === session.generation) {
      session.generation += 1;
      session.rotatedAt = this.serverNow();
      const answer = this.#tokenFor(sid);
      if (this.loseNextRefreshAnswer) {
        this.loseNextRefreshAnswer = false;
        throw new TypeError("fetch failed"); // rotated on the server, answer (and cookie) lost
      }
      this.jar = `${sid}.${session.generation}`;
      return answer;
    }
    if (generation === session.generation - 1 && this.serverNow() - session.rotatedAt <= this.graceMs) {
      this.jar = `${sid}.${session.generation}`;
      return this.#tokenFor(sid);
    }
    session.revoked = true;
    this.reuse = (this.reuse ?? 0) + 1;
    return problem(401, "invalid_refresh_token");
  }

  async api(request) {
    const auth = request.headers.get("Authorization");
    if (!auth) return problem(401, "token_missing");
    const [scheme, token] = auth.split(" ");
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    if (this.tokenType === "DPoP") {
      // As shared/access_tokens.py: a bound token only as DPoP, with a proof of its key for this request.
      if (claims.cnf?.jkt && scheme !== "DPoP") return problem(401, "invalid_token");
      if (scheme !== "DPoP" || !request.headers.get("DPoP")) return problem(401, "invalid_dpop_proof");
      const url = new URL(request.url);
      let proof;
      try {
        proof = await verifyProof(request.headers.get("DPoP"), { htm: request.method, htu: url.origin + url.pathname });
      } catch {
        return problem(401, "invalid_dpop_proof");
      }
      const ath = Buffer.from(await crypto.subtle.digest("SHA-256", Buffer.from(token))).toString("base64url");
      if (proof.claims.ath !== ath || (claims.cnf?.jkt && proof.jkt !== claims.cnf.jkt)) return problem(401, "invalid_dpop_proof");
      if (this.seenJtis.has(proof.claims.jti)) return problem(401, "invalid_dpop_proof");
      if (this.apiNonce && proof.claims.nonce !== this.apiNonce) {
        return problem(401, "use_dpop_nonce", { "DPoP-Nonce": this.apiNonce,
                                               "WWW-Authenticate": 'DPoP error="use_dpop_nonce"' });
      }
      this.seenJtis.add(proof.claims.jti);
    }
    if (this.sessions.get(claims.sid)?.revoked) return problem(401, "token_revoked");
    if (claims.exp * 1000 <= this.serverNow()) return problem(401, "token_expired");
    return json(200, { ok: true, sid: claims.sid });
  }

  /** The request's proof checked (null without one), or the problem to answer with. */
  async #proof(request, path) {
    const header = request.headers.get("DPoP");
    if (!header) return { proof: null };
    let proof;
    try {
      proof = await verifyProof(header, { htm: request.method, htu: new URL(request.url).origin + path });
    } catch {
      return { refused: problem(401, "invalid_dpop_proof") };
    }
    if (this.seenJtis.has(proof.claims.jti)) return { refused: problem(401, "invalid_dpop_proof") };
    if (this.nonce && proof.claims.nonce !== this.nonce) {
      return { refused: problem(401, "use_dpop_nonce", { "DPoP-Nonce": this.nonce }) };
    }
    this.seenJtis.add(proof.claims.jti);
    return { proof };
  }

  async fetch(input, init = {}) {
    const request = new Request(new URL(input instanceof Request ? input.url : String(input), "http://localhost"), init);
    const path = new URL(request.url).pathname;
    const body = init.body ?? (input instanceof Request ? await input.clone().text() : undefined);
    this.calls.push({ path, url: request.url, method: request.method, auth: request.headers.get("Authorization"), body,
                      dpop: request.headers.get("DPoP"), at: this.clock.now() });
    if (this.offline) throw new TypeError("fetch failed");
    const { proof, refused } = path.startsWith("/api/auth/") ? await this.#proof(request, path) : {};
    if (refused) return refused;
    if (path === "/api/auth/refresh") {
      const queued = this.refreshAnswers.shift();
      return queued ? queued() : this.refresh(proof);
    }
    if (path === "/api/auth/login") return this.login(proof);
    if (path === "/api/auth/logout") {
      const sid = this.jar?.split(".")[0];
      const session = this.sessions.get(sid);
      if (session?.jkt && proof?.jkt !== session.jkt) return problem(401, "invalid_dpop_proof");
      if (sid) session.revoked = true;
      this.jar = null;
      return new Response(null, { status: 204 });
    }
    return this.api(request);
  }
}

/** `navigator.locks` for one browser profile: exclusive, FIFO, honours `signal`. */
export class FakeLocks {
  #queues = new Map();
  held = 0;

  request(name, options, callback) {
    if (typeof options === "function") [options, callback] = [{}, options];
    const queue = this.#queues.get(name) ?? [];
    this.#queues.set(name, queue);
    return new Promise((resolve, reject) => {
      const entry = { callback, resolve, reject };
      const signal = options.signal;
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener("abort", () => {
        const index = queue.indexOf(entry);
        if (index > 0) { // still waiting (index 0 holds the lock)
          queue.splice(index, 1);
          reject(signal.reason);
        }
      });
      queue.push(entry);
      if (queue.length === 1) this.#grant(name);
    });
  }

  async #grant(name) {
    const queue = this.#queues.get(name);
    const entry = queue[0];
    if (!entry) return;
    this.held += 1;
    try {
      entry.resolve(await entry.callback({ name }));
    } catch (error) {
      entry.reject(error);
    } finally {
      this.held -= 1;
      queue.shift();
      this.#grant(name);
    }
  }
}

/** BroadcastChannel for one browser profile; `drop` loses the next n messages. */
export function fakeChannels() {
  const open = new Set();
  const control = { drop: 0, delivered: 0, lost: 0 };
  class FakeBroadcastChannel {
    constructor(name) {
      this.name = name;
      this.onmessage = null;
      open.add(this);
    }

    postMessage(data) {
      if (!open.has(this)) throw new Error("closed");
      if (control.drop > 0) {
        control.drop -= 1;
        control.lost += 1;
        return;
      }
      const copy = structuredClone(data);
      for (const other of open) {
        if (other !== this && other.name === this.name) {
          setImmediate(() => { control.delivered += 1; other.onmessage?.({ data: copy }); });
        }
      }
    }

    close() {
      open.delete(this);
    }
  }
  return { BroadcastChannel: FakeBroadcastChannel, control };
}

/** A browser profile: a clock, a server, locks and channels shared by its tabs. */
export function browserProfile({ ttl = 60, graceMs = 10_000, keys = null } = {}) {
  const clock = new FakeClock();
  const server = new FakeServer(clock, { ttl, graceMs });
  const locks = new FakeLocks();
  const channels = fakeChannels();
  const tabs = [];
  const windows = [];
  return {
    clock, server, locks, channels, tabs, windows,
    /** A TokenClient on this profile; `window` receives online/visibility events. */
    async tab(TokenClient, options = {}) {
      const window = new EventTarget();
      const document = new EventTarget();
      document.visibilityState = "visible";
      const client = new TokenClient({
        fetch: server.fetch, now: clock.now, timers: clock, locks, BroadcastChannel: channels.BroadcastChannel,
        random: () => 0.5, refreshAhead: 0, settleMs: 0, origin: "http://localhost",
        dpop: keys ? { store: keys } : false,
        wake: { target: window, document }, ...options,
      });
      tabs.push(client);
      windows.push({ window, document });
      return client;
    },
    dispose() {
      for (const client of tabs) client.dispose();
    },
  };
}
