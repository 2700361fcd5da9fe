/**
 * clock.js: the server's time as this tab can know it, and sessions timed by it.
 *
 * A laptop's clock can be minutes off. Tokens carry the server's `iat` and `exp`; comparing them
 * with this machine's `Date.now()` would refresh in a loop (clock fast: every token looks expired)
 * or send expired tokens (clock slow). So the client measures the offset between the two clocks
 * from every token it receives (`iat`, the server's time when it signed) or, failing that, the
 * answer's `Date` header, and keeps every deadline on this machine's clock, shifted by it.
 */

import { decodeJwt } from "./jwt.js";

// `iat` and `Date` have one-second resolution, and an answer takes a while to arrive: offsets
// smaller than this are noise, and treating them as zero keeps the server's times exact.
export const CLOCK_RESOLUTION_MS = 2000;

/** A `Date`/`Retry-After` HTTP date in epoch milliseconds, or null. */
export function parseHttpDate(value) {
  if (!value) return null;
  const at = Date.parse(value);
  return Number.isFinite(at) ? at : null;
}

export class ServerClock {
  #offset = 0; // the server's clock minus this machine's, in milliseconds
  #now;

  constructor({ now = () => Date.now() } = {}) {
    this.#now = now;
  }

  /** The measured offset (server minus local), 0 when the clocks agree within a second or two. */
  get offset() {
    return this.#offset;
  }

  /** This machine's time. */
  local() {
    return this.#now();
  }

  /** The server's time now, as well as this tab can tell. */
  now() {
    return this.#now() + this.#offset;
  }

  /** A server timestamp on this machine's clock. */
  toLocal(serverMs) {
    return serverMs - this.#offset;
  }

  /**
   * Learn the offset from a server timestamp that was current when its answer arrived at
   * `receivedAt` (local). Seconds-resolution timestamps are truncated, hence the half second.
   */
  observe(serverMs, receivedAt = this.#now()) {
    if (!Number.isFinite(serverMs)) return this.#offset;
    const offset = serverMs + 500 - receivedAt;
    this.#offset = Math.abs(offset) < CLOCK_RESOLUTION_MS ? 0 : offset;
    return this.#offset;
  }
}

/**
 * Turn a TokenResponse into the in-memory session, measuring the clock offset on the way; its
 * `issuedAt` and `expiresAt` are on this machine's clock (what `Date.now()` will say then).
 */
export function sessionFromTokenResponse(body, clock, { receivedAt = clock.local(), date = null } = {}) {
  const claims = decodeJwt(body.access_token);
  if (Number.isFinite(claims.iat)) clock.observe(claims.iat * 1000, receivedAt);
  else clock.observe(parseHttpDate(date), receivedAt);
  const lifetime = (claims.exp - claims.iat) * 1000 || (body.expires_in || 0) * 1000;
  const expiresAt = Number.isFinite(claims.exp) ? clock.toLocal(claims.exp * 1000) : receivedAt + lifetime;
  return Object.freeze({
    token: body.access_token,
    sid: claims.sid,
    tokenType: body.token_type === "DPoP" ? "DPoP" : "Bearer",
    jti: claims.jti,
    user: Object.freeze({ ...body.user }),
    issuedAt: expiresAt - lifetime,
    expiresAt,
  });
}
