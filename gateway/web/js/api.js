/**
 * The services' HTTP calls, as the app uses them. Protected calls go through the token client
 * (Bearer, silent refresh, one retry); public ones use plain fetch and carry no token.
 */

import { ProblemError } from "./token-client/index.js";

export const PAGE_SIZE = 10;

export function createApi(auth) {
  async function call(method, path, { body, authenticated = false } = {}) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = authenticated ? await auth.fetch(path, init) : await fetch(path, init);
    if (!response.ok) throw await ProblemError.from(response);
    return response.status === 204 ? null : response.json();
  }
  const id = encodeURIComponent;

  return {
    signup: (body) => call("POST", "/api/auth/signup", { body }),
    boards: {
      list: (cursor) => call("GET", `/api/boards?limit=${PAGE_SIZE}${cursor ? `&cursor=${id(cursor)}` : ""}`),
      create: (body) => call("POST", "/api/boards", { body, authenticated: true }),
      update: (boardId, body) => call("PATCH", `/api/boards/${id(boardId)}`, { body, authenticated: true }),
      remove: (boardId) => call("DELETE", `/api/boards/${id(boardId)}`, { authenticated: true }),
    },
    profiles: {
      me: () => call("GET", "/api/profiles/me", { authenticated: true }),
      updateMe: (body) => call("PATCH", "/api/profiles/me", { body, authenticated: true }),
      get: (userId) => call("GET", `/api/profiles/${id(userId)}`),
    },
    sessions: {
      list: () => call("GET", "/api/auth/sessions", { authenticated: true }),
      revoke: (sessionId) => call("DELETE", `/api/auth/sessions/${id(sessionId)}`, { authenticated: true }),
    },
  };
}

/** A sentence for people from whatever went wrong. */
export function describeError(error) {
  if (error instanceof ProblemError) {
    if (error.status === 401 && error.code !== "invalid_credentials") {
      return "Your session has ended; log in again.";
    }
    return error.detail;
  }
  if (error instanceof TypeError) return "Could not reach the server. Check the connection and try again.";
  return error?.message || "Something went wrong.";
}
