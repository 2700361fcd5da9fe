import type { SessionState, TokenClient } from "./index.js";

/** The client's state as React state (useSyncExternalStore). */
export declare function useSession(client: TokenClient): SessionState;
