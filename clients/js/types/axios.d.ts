import type { AxiosInstance } from "axios";
import type { TokenClient } from "./index.js";

/** Send the access token and refresh-and-resend once on 401 token_expired; returns the detacher. */
export declare function attachTokenClient(instance: AxiosInstance, client: TokenClient): () => void;
