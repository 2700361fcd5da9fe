/** @silent-auth/token-client: silent sessions for a single-page app. */

export interface User {
  id: string;
  email?: string;
  name: string;
  [field: string]: unknown;
}

export type Status = "restoring" | "signed-in" | "signed-out";

/** The client's state: immutable, replaced on every change (fits useSyncExternalStore). */
export interface SessionState {
  readonly status: Status;
  readonly user: Readonly<User> | null;
  readonly sessionId: string | null;
  readonly tokenId: string | null;
  /** When the token was issued and expires, on this machine's clock (epoch ms), skew corrected. */
  readonly issuedAt: number | null;
  readonly expiresAt: number | null;
  readonly refreshAheadAt: number | null;
  readonly refreshAhead: number;
  readonly refreshing: boolean;
  /** Refreshes this tab has sent. */
  readonly refreshes: number;
  /** The network failed on the last attempt; the session is kept and renewed when it is back. */
  readonly offline: boolean;
  /** The server's clock minus this machine's, in ms (0 when they agree within ~2 s). */
  readonly clockOffset: number;
  /** RFC 7638 thumbprint of the DPoP key this session is bound to, or null (an unbound session). */
  readonly keyThumbprint: string | null;
  /** DPoP in this browser: "available", "off", or what is missing ("no WebCrypto", "no IndexedDB"). */
  readonly dpop: string;
  /** Why the session ended, for people ("You were logged out in another tab."), else null. */
  readonly reason: string | null;
}

export interface LogEntry {
  readonly at: number;
  readonly level: "ok" | "info" | "warn" | "error";
  readonly text: string;
}

export interface Endpoints {
  refresh: string;
  login: string;
  logout: string;
  logoutAll: string;
}

export interface RetryOptions {
  /** Retries of a failed refresh within one call (default 3). */
  retries?: number;
  /** First backoff step in ms (default 500); each retry doubles it, up to maxMs (default 4000). */
  baseMs?: number;
  maxMs?: number;
  /** The longest Retry-After waited for within a call (default 4000); longer ones are retried later. */
  maxRetryAfterMs?: number;
}

export interface WakeOptions {
  /** Heartbeat period in ms (default 15000) and how late it must fire to count as a wake-up (default 15000). */
  intervalMs?: number;
  lateMs?: number;
  target?: EventTarget;
  document?: EventTarget & { visibilityState?: string };
}

export interface TimerFunctions {
  setTimeout(callback: () => void, ms?: number): unknown;
  clearTimeout(id: unknown): void;
  setInterval(callback: () => void, ms?: number): unknown;
  clearInterval(id: unknown): void;
}

export interface LockManagerLike {
  request<T>(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<T> | T): Promise<T>;
}

export interface TokenClientOptions {
  /** Seconds before expiry to refresh proactively (default 60; 0 turns it off; used only when at most half the lifetime). */
  refreshAhead?: number;
  /** Names the Web Lock and the BroadcastChannel (default "silent-auth"). */
  name?: string;
  endpoints?: Partial<Endpoints>;
  /** How long the lock is kept after sharing a token, in ms (default 50). */
  settleMs?: number;
  /** How long to wait for the cross-tab lock before going ahead without it, in ms (default 10000; 0: for ever). */
  lockTimeoutMs?: number;
  retry?: RetryOptions;
  /** Watch visibility, online and late timers (default true). */
  wake?: boolean | WakeOptions;
  /** The underlying fetch (default: the global one). */
  fetch?: typeof fetch;
  /**
   * DPoP (RFC 9449), default true: a non-extractable P-256 key in IndexedDB, made at login,
   * proofs on login, refresh and logout, deleted at logout. false: unbound sessions. For tests:
   * the WebCrypto to use and a key store in place of IndexedDB.
   */
  dpop?: boolean | { crypto?: Crypto; store?: DpopKeyStore | null };
  /** The origin of the proofs' `htu` (default: location.origin); it must be the server's public origin. */
  origin?: string;
  /** For tests: this machine's clock, randomness for jitter, timers, Web Locks and BroadcastChannel. */
  now?: () => number;
  random?: () => number;
  timers?: TimerFunctions;
  locks?: LockManagerLike | null;
  BroadcastChannel?: typeof BroadcastChannel | null;
}

/** What `authorizationHeaders` gives: nothing when signed out, `DPoP` only with a DPoP-bound token. */
export interface AuthorizationHeaders {
  Authorization?: string;
  DPoP?: string;
}

export declare const DEFAULT_ENDPOINTS: Readonly<Endpoints>;

export declare class TokenClient {
  constructor(options?: TokenClientOptions);
  getSnapshot(): SessionState;
  subscribe(listener: (state: SessionState) => void): () => void;
  onLog(listener: (entry: LogEntry) => void): () => void;
  getLog(): LogEntry[];
  getAccessToken(): string | null;
  /** A token to send now, renewed first if it expired (after sleep); null when signed out. */
  getFreshToken(): Promise<string | null>;
  /** After a 401 for `staleToken`: a newer token of the same session (single flight), or SessionEndedError. */
  renewAfter(staleToken: string | null): Promise<string>;
  /** What a 401 with `code` means for the session of `token`: "renew", "revoked" (signs out) or "final". */
  handleUnauthorized(code: string | null, token: string | null): "renew" | "revoked" | "final";
  /**
   * The headers that authorize a call of `method` to `url`, as `fetch` makes them: Bearer, or for a
   * DPoP-bound token `DPoP` plus a new proof with `ath`; `{}` when signed out. Without `token`, the
   * fresh token; `nonce` (a 401 use_dpop_nonce's DPoP-Nonce) is signed into the proof and kept.
   */
  authorizationHeaders(method: string, url: string | URL, options?: { token?: string | null; nonce?: string | null }): Promise<AuthorizationHeaders>;
  readonly clockOffset: number;
  dispose(): void;
  restore(): Promise<SessionState>;
  login(credentials: { email: string; password: string }): Promise<User>;
  logout(): Promise<User | null>;
  logoutEverywhere(): Promise<void>;
  refreshNow(): Promise<User>;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

export interface Problem {
  status: number;
  code?: string;
  title?: string;
  detail?: string;
  errors?: unknown[];
  [field: string]: unknown;
}

export declare class ProblemError extends Error {
  constructor(problem: Problem);
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly errors: unknown[];
  readonly problem: Problem;
  static from(response: Response): Promise<ProblemError>;
}

export declare class SessionEndedError extends Error {
  constructor(message?: string);
  readonly code: "session_ended";
}

/** The network failed; a TypeError like fetch's own, so fetch-shaped code keeps working. */
export declare class NetworkError extends TypeError {
  constructor(cause?: unknown, message?: string);
  readonly code: "network_error";
}

export declare class LockTimeoutError extends Error {
  constructor(name: string, ms: number);
}

export declare class ServerClock {
  constructor(options?: { now?: () => number });
  readonly offset: number;
  local(): number;
  now(): number;
  toLocal(serverMs: number): number;
  observe(serverMs: number | null, receivedAt?: number): number;
}

export declare function readProblem(response: Response): Promise<Problem>;
export declare function authErrorCode(response: Response): Promise<string | null>;
export declare function decodeJwt(token: string): Record<string, unknown>;

/** Where the key pair is kept (IndexedDB by default): one record. */
export interface DpopKeyStore {
  load(): Promise<CryptoKeyPair | null>;
  save(pair: CryptoKeyPair): Promise<void>;
  remove(): Promise<void>;
}

export interface PublicJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
}

/** One key pair and its public JWK and thumbprint; `proof` signs a DPoP proof (compact JWS). */
export declare class DpopKey {
  static of(pair: CryptoKeyPair, crypto?: Crypto): Promise<DpopKey>;
  readonly pair: CryptoKeyPair;
  readonly jwk: PublicJwk;
  readonly thumbprint: string;
  proof(claims: { htm: string; htu: string; now?: number; nonce?: string | null; accessToken?: string | null }): Promise<string>;
}

export declare class DpopKeys {
  constructor(options?: { name?: string; crypto?: Crypto; store?: DpopKeyStore | null });
  readonly available: boolean;
  readonly missing: "WebCrypto" | "IndexedDB" | null;
  create(): Promise<DpopKey>;
  keep(key: DpopKey): Promise<void>;
  current(): Promise<DpopKey | null>;
  forget(): Promise<void>;
}

export declare class IndexedDbKeyStore implements DpopKeyStore {
  constructor(name: string, indexedDB?: IDBFactory);
  load(): Promise<CryptoKeyPair | null>;
  save(pair: CryptoKeyPair): Promise<void>;
  remove(): Promise<void>;
}

export declare function jwkThumbprint(jwk: { crv: string; kty: string; x: string; y: string }, subtle?: SubtleCrypto): Promise<string>;
