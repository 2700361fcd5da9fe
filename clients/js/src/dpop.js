/**
 * dpop.js: the browser's key for DPoP (RFC 9449) and the proofs signed with it.
 *
 * The key is an ECDSA P-256 pair made by WebCrypto with a non-extractable private key: no script,
 * this one included, can read it out, so whoever copies the refresh cookie cannot make proofs. It
 * is kept in IndexedDB (a CryptoKeyPair survives structured clone as it is), so reloads and every
 * tab of the origin sign with the same key; it is made at login and deleted at logout.
 *
 * Where WebCrypto or IndexedDB is missing (an old browser, a private window that refuses
 * IndexedDB) `DpopKeys.available` is false and the client falls back to an unbound session.
 */

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING = { name: "ECDSA", hash: "SHA-256" };
const encoder = new TextEncoder();

/** base64url without padding, of bytes (ArrayBuffer or a typed array) or of a string's UTF-8. */
export function base64url(data) {
  const bytes = typeof data === "string" ? encoder.encode(data) : new Uint8Array(data.buffer ?? data,
    data.byteOffset ?? 0, data.byteLength);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** RFC 7638 thumbprint of an EC public key: SHA-256 of {"crv","kty","x","y"} in that order, no spaces. */
export async function jwkThumbprint(jwk, subtle = globalThis.crypto.subtle) {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return base64url(await subtle.digest("SHA-256", encoder.encode(canonical)));
}

/** The proof's id: 128 random bits. */
function randomId(crypto) {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * One key pair with what a proof needs: the public JWK (only kty, crv, x, y) and its thumbprint.
 */
export class DpopKey {
  constructor(pair, jwk, thumbprint, crypto) {
    this.pair = pair;
    this.jwk = jwk;
    this.thumbprint = thumbprint;
    this.crypto = crypto;
  }

  static async of(pair, crypto = globalThis.crypto) {
    const exported = await crypto.subtle.exportKey("jwk", pair.publicKey);
    const jwk = { kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y };
    return new DpopKey(pair, jwk, await jwkThumbprint(jwk, crypto.subtle), crypto);
  }

  /**
   * A compact JWS for one request: header exactly {typ, alg, jwk}; claims jti (new each time),
   * htm, htu (no query or fragment), iat (seconds, `now` in ms), and `nonce` and `ath` when given.
   */
  async proof({ htm, htu, now = Date.now(), nonce = null, accessToken = null }) {
    const url = new URL(htu);
    const claims = { jti: randomId(this.crypto), htm: htm.toUpperCase(), htu: url.origin + url.pathname,
                     iat: Math.floor(now / 1000) };
    if (nonce) claims.nonce = nonce;
    if (accessToken) claims.ath = base64url(await this.crypto.subtle.digest("SHA-256", encoder.encode(accessToken)));
    const input = `${base64url(JSON.stringify({ typ: "dpop+jwt", alg: "ES256", jwk: this.jwk }))}.${base64url(JSON.stringify(claims))}`;
    // WebCrypto's ECDSA signature is already the raw r||s (64 bytes) JWS wants.
    const signature = await this.crypto.subtle.sign(SIGNING, this.pair.privateKey, encoder.encode(input));
    return `${input}.${base64url(signature)}`;
  }
}

/** IndexedDB as a one-record store: `load`, `save(pair)`, `remove`. */
export class IndexedDbKeyStore {
  constructor(name, indexedDB = globalThis.indexedDB) {
    this.name = `${name}-dpop`;
    this.indexedDB = indexedDB;
  }

  #open() {
    return new Promise((resolve, reject) => {
      const request = this.indexedDB.open(this.name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore("keys");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error("IndexedDB is blocked"));
    });
  }

  async #run(mode, action) {
    const db = await this.#open();
    try {
      return await new Promise((resolve, reject) => {
        const transaction = db.transaction("keys", mode);
        const request = action(transaction.objectStore("keys"));
        transaction.oncomplete = () => resolve(request.result);
        transaction.onerror = () => reject(transaction.error);
        transaction.onabort = () => reject(transaction.error ?? new Error("IndexedDB transaction aborted"));
      });
    } finally {
      db.close();
    }
  }

  async load() {
    return (await this.#run("readonly", (store) => store.get("current"))) ?? null;
  }

  async save(pair) {
    await this.#run("readwrite", (store) => store.put(pair, "current"));
  }

  async remove() {
    await this.#run("readwrite", (store) => store.delete("current"));
  }
}

/**
 * The browser's DPoP key: `create` (a new pair, not yet kept), `keep` (kept for every tab),
 * `current` (the kept one, or null), `forget`. Reads IndexedDB each time, since another tab may
 * have logged in (new key) or out (no key) meanwhile.
 */
export class DpopKeys {
  constructor({ name = "silent-auth", crypto = globalThis.crypto, store } = {}) {
    this.crypto = crypto;
    const hasCrypto = Boolean(crypto?.subtle?.generateKey && crypto.getRandomValues);
    this.store = store ?? (globalThis.indexedDB ? new IndexedDbKeyStore(name) : null);
    this.available = hasCrypto && Boolean(this.store);
    this.missing = !hasCrypto ? "WebCrypto" : !this.store ? "IndexedDB" : null;
    this.#cached = null;
  }

  #cached;

  async create() {
    const pair = await this.crypto.subtle.generateKey(ALGORITHM, false, ["sign"]);
    return DpopKey.of(pair, this.crypto);
  }

  async keep(key) {
    await this.store.save(key.pair);
    this.#cached = key;
  }

  async current() {
    const pair = await this.store.load();
    if (!pair) {
      this.#cached = null;
      return null;
    }
    if (this.#cached?.pair.privateKey !== pair.privateKey) {
      // A structured clone from IndexedDB is a new object each time: compare by public key.
      const key = await DpopKey.of(pair, this.crypto);
      if (this.#cached?.thumbprint !== key.thumbprint) this.#cached = key;
      else return this.#cached;
    }
    return this.#cached;
  }

  async forget() {
    this.#cached = null;
    await this.store.remove();
  }
}
