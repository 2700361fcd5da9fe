import type { AxiosInstance } from "axios";
import type { TokenClient } from "./index.js";

/**
 * Authorize each request as `client.fetch` does (Bearer, or DPoP with a proof for a DPoP-bound token);
 * re-send once after a refresh on 401 token_expired, and once with the nonce on 401 use_dpop_nonce;
 * returns the detacher.
 */
export declare function attachTokenClient(instance: AxiosInstance, client: TokenClient): () => void;
