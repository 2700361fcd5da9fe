import type { ApolloLink, Operation } from "@apollo/client/core";
import type { TokenClient } from "./index.js";

export interface AuthLinkOptions {
  /** The HttpLink's `uri` (the DPoP proof's `htu`); default "/graphql". A context `uri` wins. */
  uri?: string | ((operation: Operation) => string);
  /** The HttpLink's method (the proof's `htm`); default "POST". A context `fetchOptions.method` wins. */
  method?: string;
}

/**
 * An ApolloLink (before the HttpLink) that authorizes each operation as `client.fetch` does (Bearer, or
 * DPoP with a proof for a DPoP-bound token) and re-sends once after a refresh on 401 token_expired, and
 * once with the nonce on 401 use_dpop_nonce.
 */
export declare function createAuthLink(client: TokenClient, options?: AuthLinkOptions): ApolloLink;
