/**
 * Apollo Client: `createAuthLink(client)` is an ApolloLink to put before the HttpLink. It sends
 * the access token and, when the server answers 401 `token_expired` (or `invalid_token` for the
 * token sent), refreshes once through the client and re-sends the operation once: the flow
 * Apollo users otherwise write by hand with `onError`, with single flight and tabs handled.
 *
 *     const apollo = new ApolloClient({
 *       link: from([createAuthLink(auth), new HttpLink({ uri: "/graphql" })]),
 *       cache: new InMemoryCache(),
 *     });
 */

import { ApolloLink, Observable } from "@apollo/client/core/index.js";

function problemCode(error) {
  const result = error?.result;
  if (typeof result?.code === "string") return result.code;
  const challenge = error?.response?.headers?.get?.("WWW-Authenticate") ?? "";
  return /error="invalid_token"/.test(challenge) ? "invalid_token" : null;
}

export function createAuthLink(client) {
  return new ApolloLink((operation, forward) => new Observable((observer) => {
    let subscription = null;
    let closed = false;
    let retried = false;
    const send = (token) => {
      if (closed) return;
      operation.setContext(({ headers = {} }) => ({
        headers: token ? { ...headers, authorization: `Bearer ${token}` } : headers,
      }));
      subscription = forward(operation).subscribe({
        next: (result) => observer.next(result),
        complete: () => observer.complete(),
        error: (error) => {
          const status = error?.statusCode ?? error?.response?.status;
          if (status !== 401 || retried || !token || client.handleUnauthorized(problemCode(error), token) !== "renew") {
            observer.error(error);
            return;
          }
          retried = true;
          client.renewAfter(token).then(send, () => observer.error(error));
        },
      });
    };
    client.getFreshToken().then(send, (error) => observer.error(error));
    return () => {
      closed = true;
      subscription?.unsubscribe();
    };
  }));
}
