// Type-checked by `tsc --noEmit` (npm test): the declarations describe what an app writes.
import { ApolloClient, HttpLink, InMemoryCache, from } from "@apollo/client/core";
import axios from "axios";
import { NetworkError, ProblemError, TokenClient, type AuthorizationHeaders, type SessionState } from "@silent-auth/token-client";
import { createAuthLink } from "@silent-auth/token-client/apollo";
import { attachTokenClient } from "@silent-auth/token-client/axios";
import { useSession } from "@silent-auth/token-client/react";

const auth = new TokenClient({ refreshAhead: 30, lockTimeoutMs: 5_000, retry: { retries: 2 } });
const stop: () => void = auth.subscribe((state: SessionState) => {
  if (state.status === "signed-in" && state.user) console.log(state.user.name, state.offline, state.clockOffset);
});
stop();

export async function example(): Promise<void> {
  await auth.restore();
  try {
    await auth.login({ email: "a@example.com", password: "pw" });
    const response: Response = await auth.fetch("/api/profiles/me");
    console.log(response.status);
  } catch (error) {
    if (error instanceof ProblemError) console.log(error.code, error.status);
    else if (error instanceof NetworkError) console.log(error.code);
  }
  const token: string | null = await auth.getFreshToken();
  console.log(token);
  const headers: AuthorizationHeaders = await auth.authorizationHeaders("GET", "/api/profiles/me");
  const retried = await auth.authorizationHeaders("GET", new URL("https://api.example/me"), { token, nonce: "n" });
  console.log(headers.Authorization, headers.DPoP, retried.Authorization);
}

export function Header(): string {
  const { status, user } = useSession(auth);
  return status === "signed-in" ? `hello ${user?.name}` : status;
}

attachTokenClient(axios.create({ baseURL: "/api" }), auth);
export const apollo = new ApolloClient({ link: from([createAuthLink(auth), new HttpLink({ uri: "/graphql" })]), cache: new InMemoryCache() });
export const apolloElsewhere = new ApolloClient({
  link: from([createAuthLink(auth, { uri: (operation) => `/graphql?op=${operation.operationName}`, method: "POST" }),
              new HttpLink({ uri: (operation) => `/graphql?op=${operation.operationName}` })]),
  cache: new InMemoryCache(),
});
