/**
 * errors.js: what a call or a session operation can fail with, and reading problem documents.
 */

/** An API error answered as an RFC 9457 problem document; `detail` is written for people. */
export class ProblemError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.name = "ProblemError";
    this.status = problem.status;
    this.code = problem.code || "unknown";
    this.detail = problem.detail || this.message;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.problem = problem;
  }

  /** Build the error from a failed response, whatever its body. */
  static async from(response) {
    return new ProblemError(await readProblem(response));
  }
}

/** The session ended or changed while a call or refresh was on its way. */
export class SessionEndedError extends Error {
  constructor(message = "The session has ended.") {
    super(message);
    this.name = "SessionEndedError";
    this.code = "session_ended";
  }
}

/**
 * The network failed (offline, DNS, connection reset). A `TypeError`, like the one `fetch` itself
 * rejects with, so code written for `fetch` keeps working; the session is kept.
 */
export class NetworkError extends TypeError {
  constructor(cause, message = "The network is unreachable; the session is kept and renewed when it is back.") {
    super(message, { cause });
    this.name = "NetworkError";
    this.code = "network_error";
  }
}

/** Whether `error` is a network failure of `fetch` (not an abort, not a programming error). */
export function isNetworkFailure(error) {
  return error instanceof NetworkError || (error instanceof TypeError && error.name === "TypeError");
}

/** Read a problem document from a response without consuming it for the caller. */
export async function readProblem(response) {
  let body = null;
  try {
    body = await response.clone().json();
  } catch {
    body = null;
  }
  if (body && typeof body === "object" && !Array.isArray(body)) {
    return { status: response.status, ...body };
  }
  return { status: response.status, code: "http_error", title: response.statusText,
           detail: `The server answered ${response.status} ${response.statusText}`.trim() };
}

/** The code of a 401: the problem's `code`, else `invalid_token` from a Bearer challenge, else null. */
export async function authErrorCode(response) {
  const problem = await readProblem(response);
  if (problem.code && problem.code !== "http_error") return problem.code;
  const challenge = response.headers.get("WWW-Authenticate") || "";
  return /error="invalid_token"/.test(challenge) ? "invalid_token" : null;
}
