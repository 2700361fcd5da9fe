/**
 * bearer-request.js: what the client needs to know about one API call: whether the caller sent
 * its own Authorization (then the call is left alone), the init that carries the access token,
 * what a 401's code means, and a short description for the log (method and path, never headers).
 */

/** What a 401 with `code` asks of the client: "renew" the token, the session was "revoked", or "final". */
export function unauthorizedOutcome(code) {
  if (code === "token_revoked") return "revoked";
  return code === "token_expired" || code === "invalid_token" ? "renew" : "final";
}

function headersOf(input, init) {
  return new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
}

/** Whether the caller set Authorization itself (someone else's token: never replaced or retried). */
export function sentAuthorization(input, init = {}) {
  return headersOf(input, init).has("Authorization");
}

/** `init` with `Authorization: <scheme> <token>` (and the caller's other headers); no token, no header. */
export function withBearer(input, init, token, scheme = "Bearer") {
  const headers = headersOf(input, init);
  if (token) headers.set("Authorization", `${scheme} ${token}`);
  return { ...init, headers };
}

/** "POST /api/boards": the method and the path (the full URL when it is another origin). */
export function describeRequest(input, init = {}) {
  const method = (init.method || (input instanceof Request ? input.method : "GET")).toUpperCase();
  const raw = input instanceof Request ? input.url : String(input);
  if (!URL.canParse?.(raw, globalThis.location?.href)) return `${method} ${raw}`; // outside a page (Node)
  const url = new URL(raw, globalThis.location?.href);
  const path = url.origin === globalThis.location?.origin ? url.pathname + url.search : url.href;
  return `${method} ${path}`;
}
