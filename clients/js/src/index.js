/**
 * @silent-auth/token-client: silent sessions for a single-page app, framework-free.
 *
 * The access token (a short-lived JWT) lives only in memory; the refresh token is an httpOnly
 * cookie that only `POST /api/auth/refresh` sees. See README.md for the guarantees and the tests
 * that prove each.
 */

export { TokenClient, DEFAULT_ENDPOINTS } from "./token-client.js";
export { ProblemError, SessionEndedError, NetworkError, readProblem, authErrorCode } from "./errors.js";
export { decodeJwt } from "./jwt.js";
export { ServerClock } from "./clock.js";
export { LockTimeoutError } from "./tab-coordinator.js";
export { DpopKey, DpopKeys, IndexedDbKeyStore, jwkThumbprint } from "./dpop.js";
