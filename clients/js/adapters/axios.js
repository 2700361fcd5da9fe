/**
 * axios: `attachTokenClient(instance, client)` authorizes each request as the client's own `fetch`
 * does (`client.authorizationHeaders`: `Bearer`, or for a DPoP-bound token `DPoP` with a new proof
 * of this method and URL carrying `ath`) and, on a 401 `token_expired` (or `invalid_token` for the
 * token sent), refreshes once through the client (one refresh for every call that fails together,
 * coordinated across tabs) and re-sends the request once. A 401 `use_dpop_nonce` with a `DPoP-Nonce`
 * is re-sent once with a proof carrying that nonce. A 401 `token_revoked` signs the client out. A
 * request that brings its own Authorization header is left alone. Returns the function that
 * detaches the interceptors.
 *
 *     const api = axios.create({ baseURL: "/api" });
 *     attachTokenClient(api, auth);
 */

// The request's state travels in its config under a string key: axios copies a config's own
// enumerable string keys when a request is sent again (a symbol would be dropped there).
const STATE = "silentAuth";

function problemCode(response) {
  const code = response?.data?.code;
  if (typeof code === "string") return code;
  const challenge = String(header(response, "WWW-Authenticate") ?? "");
  return /error="([a-z_]+)"/.exec(challenge)?.[1] ?? null;
}

function header(response, name) {
  const headers = response?.headers;
  if (typeof headers?.get === "function") return headers.get(name) ?? null;
  return headers?.[name.toLowerCase()] ?? null;
}

function setHeaders(config, headers) {
  for (const name of ["Authorization", "DPoP"]) {
    if (typeof config.headers?.set === "function") {
      if (headers[name]) config.headers.set(name, headers[name]);
      else config.headers.delete(name);
    } else {
      const { [name]: _dropped, ...rest } = config.headers ?? {};
      config.headers = headers[name] ? { ...rest, [name]: headers[name] } : rest;
    }
  }
}

export function attachTokenClient(instance, client) {
  // Made by the client as `fetch` makes them: the URL as axios will send it (baseURL, url; the
  // proof's `htu` drops the query), the method in upper case.
  const authorize = async (config, token, nonce = null) => {
    const headers = await client.authorizationHeaders((config.method ?? "get").toUpperCase(), instance.getUri(config),
                                                      { token, nonce });
    setHeaders(config, headers);
  };
  const resend = (config, state) => {
    state.resending = true;
    return instance.request(config);
  };

  const requestId = instance.interceptors.request.use(async (config) => {
    const state = config[STATE] ?? (config[STATE] = { token: null, retried: false, nonceRetried: false, own: false });
    if (state.resending) {
      state.resending = false; // authorized by the response interceptor below
      return config;
    }
    const own = typeof config.headers?.has === "function" ? config.headers.has("Authorization") : Boolean(config.headers?.Authorization);
    if (own) {
      state.own = true;
      return config;
    }
    state.token = await client.getFreshToken();
    if (state.token) await authorize(config, state.token);
    return config;
  });
  const responseId = instance.interceptors.response.use(undefined, async (error) => {
    const config = error?.config;
    const state = config?.[STATE];
    if (!state || state.own || !state.token || error.response?.status !== 401) throw error;
    const code = problemCode(error.response);
    if (code === "use_dpop_nonce") {
      // RFC 9449 §9: the resource server wants a proof with its nonce; once per token sent.
      const nonce = header(error.response, "DPoP-Nonce");
      if (!nonce || state.nonceRetried) throw error;
      state.nonceRetried = true;
      await authorize(config, state.token, nonce);
      return resend(config, state);
    }
    if (state.retried || client.handleUnauthorized(code, state.token) !== "renew") throw error;
    let token;
    try {
      token = await client.renewAfter(state.token);
    } catch {
      throw error; // the session ended or could not be renewed: the original 401 is the answer
    }
    Object.assign(state, { retried: true, nonceRetried: false, token });
    await authorize(config, token);
    return resend(config, state);
  });
  return () => {
    instance.interceptors.request.eject(requestId);
    instance.interceptors.response.eject(responseId);
  };
}
