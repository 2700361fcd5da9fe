/**
 * Apollo Client: `createAuthLink(client, {uri, method})` is an ApolloLink to put before the
 * HttpLink. It authorizes each operation as the client's own `fetch` does
 * (`client.authorizationHeaders`: `Bearer`, or for a DPoP-bound token `DPoP` with a new proof of
 * the HttpLink's method and URL carrying `ath`) and, when the server answers 401 `token_expired`
 * (or `invalid_token` for the token sent), refreshes once through the client and re-sends the
 * operation once: the flow Apollo users otherwise write by hand with `onError`, with single flight
 * and tabs handled. A 401 `use_dpop_nonce` with a `DPoP-Nonce` is re-sent once with a proof
 * carrying that nonce.
 *
 * A proof names the request's URL and method, which the HttpLink decides: give the link the same
 * `uri` (a string, or a function of the operation; default "/graphql") and `method` ("POST"); an
 * operation's context `uri` and `fetchOptions.method` win, as they do in the HttpLink.
 *
 *     const apollo = new ApolloClient({
 *       link: from([createAuthLink(auth, { uri: "/graphql" }), new HttpLink({ uri: "/graphql" })]),
 *       cache: new InMemoryCache(),
 *     });
 */

import { ApolloLink, Observable } from "@apollo/client/core/index.js";

function problemCode(error) {
  const result = error?.result;
  if (typeof result?.code === "string") return result.code;
  const challenge = error?.response?.headers?.get?.("WWW-Authenticate") ?? "";
  return /error="([a-z_]+)"/.exec(challenge)?.[1] ?? null;
}

export function createAuthLink(client, { uri = "/graphql", method = "POST" } = {}) {
  return new ApolloLink((operation, forward) => new Observable((observer) => {
    let subscription = null;
    let closed = false;
    let retried = false;
    let nonceRetried = false;
    const target = () => {
      const context = operation.getContext();
      const chosen = context.uri ?? uri;
      return {
        url: typeof chosen === "function" ? chosen(operation) : chosen,
        method: context.fetchOptions?.method ?? method,
      };
    };
    const send = async (token, nonce = null) => {
      const { url, method: verb } = target();
      const authorization = token ? await client.authorizationHeaders(verb, url, { token, nonce }) : {};
      if (closed) return;
      operation.setContext(({ headers = {} }) => {
        const { authorization: _a, Authorization: _b, dpop: _c, DPoP: _d, ...rest } = headers;
        const own = token ? rest : headers;
        return {
          headers: {
            ...own,
            ...(authorization.Authorization ? { authorization: authorization.Authorization } : {}),
            ...(authorization.DPoP ? { dpop: authorization.DPoP } : {}),
          },
        };
      });
      subscription = forward(operation).subscribe({
        next: (result) => observer.next(result),
        complete: () => observer.complete(),
        error: (error) => {
          const status = error?.statusCode ?? error?.response?.status;
          const code = status === 401 ? problemCode(error) : null;
          if (status === 401 && token && code === "use_dpop_nonce") {
            // RFC 9449 §9: the resource server wants a proof with its nonce; once per token sent.
            const given = error?.response?.headers?.get?.("DPoP-Nonce");
            if (!given || nonceRetried) {
              observer.error(error);
              return;
            }
            nonceRetried = true;
            send(token, given).catch((failure) => observer.error(failure));
            return;
          }
          if (status !== 401 || retried || !token || client.handleUnauthorized(code, token) !== "renew") {
            observer.error(error);
            return;
          }
          retried = true;
          nonceRetried = false;
          client.renewAfter(token).then((renewed) => send(renewed), () => observer.error(error))
            .catch((failure) => observer.error(failure));
        },
      });
    };
    client.getFreshToken().then((token) => send(token)).catch((error) => observer.error(error));
    return () => {
      closed = true;
      subscription?.unsubscribe();
    };
  }));
}
