/**
 * retrying-fetch.js: send one request, and send it again later when the network or the server
 * failed in a way that may pass: bounded attempts, exponential backoff with jitter (so that tabs
 * and browsers that failed together do not come back together), `Retry-After` honoured.
 *
 * The token client sends only its refresh through this: an API call is never repeated here, since
 * the server may have acted on it. A refresh may be, within limits: if the first answer was lost
 * after the server rotated the cookie, the browser still holds the predecessor, and the server's
 * `REFRESH_REUSE_GRACE` (10 s by default) answers it with the current token. The default budget
 * (three retries: about 0.5 + 1 + 2 s, plus the requests) stays well inside that window.
 */

import { NetworkError, isNetworkFailure } from "./errors.js";
import { parseHttpDate } from "./clock.js";

export const RETRY_DEFAULTS = Object.freeze({ retries: 3, baseMs: 500, maxMs: 4000, maxRetryAfterMs: 4000 });

/** Whether an answer means "try again later": any 5xx, and 429 (rate limited). */
export function isRetryableStatus(status) {
  return status >= 500 || status === 429;
}

/** The wait a `Retry-After` header asks for (delay-seconds or an HTTP date), in ms, or null. */
export function retryAfterMs(response, now = Date.now()) {
  const value = response?.headers?.get("Retry-After")?.trim();
  if (!value) return null;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = parseHttpDate(value);
  return at === null ? null : Math.max(0, at - now);
}

/**
 * The wait before retry number `attempt + 1`: "equal jitter", half of the exponential step plus a
 * random part of the other half, so it is never zero and never the same for two clients.
 */
export function backoffDelay(attempt, { baseMs = RETRY_DEFAULTS.baseMs, maxMs = RETRY_DEFAULTS.maxMs,
                                         random = Math.random } = {}) {
  const step = Math.min(maxMs, baseMs * 2 ** attempt);
  return step / 2 + random() * (step / 2);
}

/**
 * `fetchImpl(input, init)`, retried on a network failure or a retryable status. Resolves with the
 * last response (which may still be a 5xx: the caller decides what it means); rejects with a
 * `NetworkError` when the network failed on every attempt. A `Retry-After` longer than
 * `maxRetryAfterMs` is not waited for here: the response is returned and the caller comes back
 * later (`retryAfterMs(response)` tells when).
 */
export async function fetchWithRetry(fetchImpl, input, init, {
  retries = RETRY_DEFAULTS.retries, baseMs = RETRY_DEFAULTS.baseMs, maxMs = RETRY_DEFAULTS.maxMs,
  maxRetryAfterMs = RETRY_DEFAULTS.maxRetryAfterMs, random = Math.random, now = () => Date.now(),
  sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)), onRetry = () => {},
} = {}) {
  for (let attempt = 0; ; attempt += 1) {
    let response = null;
    let failure = null;
    try {
      response = await fetchImpl(input, init);
    } catch (error) {
      if (!isNetworkFailure(error)) throw error; // an abort, or a bug: not for retrying
      failure = error;
    }
    if (response && !isRetryableStatus(response.status)) return response;
    if (attempt >= retries) {
      if (failure) throw failure instanceof NetworkError ? failure : new NetworkError(failure);
      return response;
    }
    const asked = response ? retryAfterMs(response, now()) : null;
    if (asked !== null && asked > maxRetryAfterMs) return response;
    const delay = asked ?? backoffDelay(attempt, { baseMs, maxMs, random });
    onRetry({ attempt: attempt + 1, delay, reason: failure ? "network" : `HTTP ${response.status}` });
    await sleep(delay);
  }
}
