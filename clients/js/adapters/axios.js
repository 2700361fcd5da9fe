/**
 * axios: `attachTokenClient(instance, client)` adds the access token to each request and, on a
 * 401 `token_expired` (or `invalid_token` for the token sent), refreshes once through the client
 * (one refresh for every call that fails together, coordinated across tabs) and re-sends the
 * request once. A 401 `token_revoked` signs the client out. A request that brings its own
 * Authorization header is left alone. Returns the function that detaches the interceptors.
 *
 *     const api = axios.create({ baseURL: "/api" });
 *     attachTokenClient(api, auth);
 */

const STATE = Symbol.for("silent-auth.axios");

function problemCode(response) {
  const code = response?.data?.code;
  if (typeof code === "string") return code;
  const challenge = response?.headers?.["www-authenticate"] ?? "";
  return /error="invalid_token"/.test(challenge) ? "invalid_token" : null;
}

function setAuthorization(config, token) {
  if (typeof config.headers?.set === "function") config.headers.set("Authorization", `Bearer ${token}`);
  else config.headers = { ...config.headers, Authorization: `Bearer ${token}` };
}

export function attachTokenClient(instance, client) {
  const requestId = instance.interceptors.request.use(async (config) => {
    const state = config[STATE] ?? (config[STATE] = { token: null, retried: false, own: false });
    if (state.retried) return config;
    const own = typeof config.headers?.has === "function" ? config.headers.has("Authorization") : Boolean(config.headers?.Authorization);
    if (own) {
      state.own = true;
      return config;
    }
    state.token = await client.getFreshToken();
    if (state.token) setAuthorization(config, state.token);
    return config;
  });
  const responseId = instance.interceptors.response.use(undefined, async (error) => {
    const config = error?.config;
    const state = config?.[STATE];
    if (!state || state.own || state.retried || !state.token || error.response?.status !== 401) throw error;
    if (client.handleUnauthorized(problemCode(error.response), state.token) !== "renew") throw error;
    let token;
    try {
      token = await client.renewAfter(state.token);
    } catch {
      throw error; // the session ended or could not be renewed: the original 401 is the answer
    }
    state.retried = true;
    setAuthorization(config, token);
    return instance.request(config);
  });
  return () => {
    instance.interceptors.request.eject(requestId);
    instance.interceptors.response.eject(responseId);
  };
}
