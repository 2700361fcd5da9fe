import type { ApolloLink } from "@apollo/client/core";
import type { TokenClient } from "./index.js";

/** An ApolloLink (before the HttpLink) that sends the token and re-sends once after a refresh on 401 token_expired. */
export declare function createAuthLink(client: TokenClient): ApolloLink;
