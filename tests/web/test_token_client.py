"""The token client's rules, one at a time, in the browser, against a scripted fake server.

The module is imported from the gateway like the app imports it; only its `fetch` is replaced, so
each rule (retry once, which 401s refresh, replaying bodies, the session guard) is checked
exactly, including cases the real services rarely produce.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

# Runs `scenario({client, server})` with a TokenClient whose fetch is `server`: it records every
# call and answers refresh and login with fresh tokens of session `server.sid`, and API calls
# from the queue `server.api` (200 when it is empty).
HARNESS = """
async (scenario) => {
  const { TokenClient } = await import("/js/token-client/index.js");
  const b64 = (value) => btoa(JSON.stringify(value)).replace(/=+$/, "");
  const now = () => Math.floor(Date.now() / 1000);
  let issued = 0;
  const json = (status, body) => new Response(JSON.stringify(body), {
    status, headers: { "Content-Type": status >= 400 ? "application/problem+json" : "application/json" } });
  const server = {
    sid: "s1", calls: [], refreshes: 0, api: [], refreshAnswer: null,
    problem: (status, code) => json(status, { type: `urn:problem:${code}`, title: code, status,
                                              detail: `detail of ${code}`, code }),
    tokenResponse() {
      issued += 1;
      const claims = { sub: "u1", sid: server.sid, jti: `t${issued}`, iat: now(), exp: now() + 60, name: "U" };
      return json(200, { access_token: `e30.${b64(claims)}.sig`, token_type: "Bearer", expires_in: 60,
                         user: { id: "u1", email: "u@example.com", name: "U" } });
    },
    calls_to: (path) => server.calls.filter((c) => c.path === path),
  };
  const fetch = async (input, init = {}) => {
    const request = new Request(input, init);
    const path = new URL(request.url).pathname;
    const call = { method: request.method, path, auth: request.headers.get("Authorization"),
                   body: await request.text() };
    server.calls.push(call);
    if (path === "/api/auth/refresh") {
      server.refreshes += 1;
      return server.refreshAnswer ? server.refreshAnswer() : server.tokenResponse();
    }
    if (path === "/api/auth/login") return server.tokenResponse();
    const answer = server.api.shift();
    return answer ? answer(call) : json(200, { ok: true });
  };
  const client = new TokenClient({ fetch, name: `unit-${Math.random()}`, refreshAhead: 0 });
  try {
    return await scenario({ client, server });
  } finally {
    client.dispose();
  }
}
"""


@pytest.fixture
def page(browsing, context) -> Page:
    return browsing.new_tab(context).open().page


def run(page: Page, scenario: str):
    return page.evaluate(f"({HARNESS})({scenario})")


def test_a_second_401_is_final_so_there_is_no_refresh_loop(page):
    result = run(
        page,
        """async ({ client, server }) => {
        await client.login({ email: "u@example.com", password: "pw" });
        const expired = () => server.problem(401, "token_expired");
        server.api.push(expired, expired, expired);
        const response = await client.fetch("/api/boards", { method: "POST", body: '{"title":"t"}',
                                                              headers: { "Content-Type": "application/json" } });
        const calls = server.calls_to("/api/boards");
        return { status: response.status, refreshes: server.refreshes, bodies: calls.map((c) => c.body),
                 tokensDiffer: calls[0].auth !== calls[1].auth, state: client.getSnapshot().status,
                 log: client.getLog().map((e) => e.text) };
    }""",
    )
    assert result["status"] == 401 and result["refreshes"] == 1
    assert result["bodies"] == ['{"title":"t"}'] * 2, "the body is sent again, unchanged"
    assert result["tokensDiffer"], "the retry carries the new token"
    assert result["state"] == "signed-in"
    assert "access token expired → refreshed silently → retried POST /api/boards ✗ 401" in result["log"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "token_missing"),
        (401, "invalid_credentials"),
        (403, "forbidden"),
        (404, "not_found"),
        (500, "internal_error"),
    ],
)
def test_other_answers_are_final(page, status, code):
    result = run(
        page,
        f"""async ({{ client, server }}) => {{
        await client.login({{ email: "u@example.com", password: "pw" }});
        server.api.push(() => server.problem({status}, "{code}"));
        const response = await client.fetch("/api/profiles/me");
        return {{ status: response.status, refreshes: server.refreshes,
                  calls: server.calls_to("/api/profiles/me").length }};
    }}""",
    )
    assert result == {"status": status, "refreshes": 0, "calls": 1}


def test_invalid_token_for_the_token_it_holds_refreshes_once(page):
    result = run(
        page,
        """async ({ client, server }) => {
        await client.login({ email: "u@example.com", password: "pw" });
        server.api.push(() => server.problem(401, "invalid_token"));
        const response = await client.fetch("/api/auth/sessions");
        return { status: response.status, refreshes: server.refreshes, log: client.getLog().map((e) => e.text) };
    }""",
    )
    assert result["status"] == 200 and result["refreshes"] == 1
    assert "access token rejected → refreshed silently → retried GET /api/auth/sessions ✓" in result["log"]


def test_token_revoked_ends_the_session_without_a_refresh(page):
    result = run(
        page,
        """async ({ client, server }) => {
        await client.login({ email: "u@example.com", password: "pw" });
        server.api.push(() => server.problem(401, "token_revoked"));
        const response = await client.fetch("/api/profiles/me");
        const snapshot = client.getSnapshot();
        return { status: response.status, refreshes: server.refreshes, state: snapshot.status,
                 calls: server.calls_to("/api/profiles/me").length, log: client.getLog().map((e) => e.text) };
    }""",
    )
    assert result["status"] == 401 and result["refreshes"] == 0 and result["calls"] == 1
    assert result["state"] == "signed-out"
    assert "access token revoked for GET /api/profiles/me → logged out" in result["log"]


def test_a_callers_own_authorization_header_is_left_alone(page):
    result = run(
        page,
        """async ({ client, server }) => {
        await client.login({ email: "u@example.com", password: "pw" });
        server.api.push(() => server.problem(401, "token_expired"));
        const response = await client.fetch("/api/profiles/me", { headers: { Authorization: "Bearer someone-elses" } });
        return { status: response.status, refreshes: server.refreshes,
                 auth: server.calls_to("/api/profiles/me").map((c) => c.auth) };
    }""",
    )
    assert result == {"status": 401, "refreshes": 0, "auth": ["Bearer someone-elses"]}


def test_a_request_object_is_replayed_with_its_body(page):
    result = run(
        page,
        """async ({ client, server }) => {
        await client.login({ email: "u@example.com", password: "pw" });
        server.api.push(() => server.problem(401, "token_expired"));
        const request = new Request("/api/boards", { method: "POST", body: "payload",
                                                     headers: { "X-Custom": "kept" } });
        const response = await client.fetch(request);
        return { status: response.status, calls: server.calls_to("/api/boards").map((c) => [c.method, c.body]) };
    }""",
    )
    assert result == {"status": 200, "calls": [["POST", "payload"], ["POST", "payload"]]}


def test_calls_failing_together_share_one_refresh(page):
    result = run(
        page,
        """async ({ client, server }) => {
        await client.login({ email: "u@example.com", password: "pw" });
        for (let i = 0; i < 5; i++) server.api.push(() => server.problem(401, "token_expired"));
        const answers = await Promise.all(Array.from({ length: 5 }, () => client.fetch("/api/profiles/me")));
        const retries = server.calls_to("/api/profiles/me").slice(5).map((c) => c.auth);
        return { statuses: answers.map((r) => r.status), refreshes: server.refreshes,
                 oneToken: new Set(retries).size === 1 && retries[0] === `Bearer ${client.getAccessToken()}` };
    }""",
    )
    assert result == {"statuses": [200] * 5, "refreshes": 1, "oneToken": True}


def test_a_rejected_refresh_token_logs_out_and_returns_the_original_answer(page):
    result = run(
        page,
        """async ({ client, server }) => {
        await client.login({ email: "u@example.com", password: "pw" });
        server.refreshAnswer = () => server.problem(401, "invalid_refresh_token");
        server.api.push(() => server.problem(401, "token_expired"));
        const response = await client.fetch("/api/profiles/me");
        const body = await response.json();
        await client.fetch("/api/profiles/me");
        const calls = server.calls_to("/api/profiles/me");
        const state = client.getSnapshot();
        return { status: response.status, code: body.code, refreshes: server.refreshes, state: state.status,
                 reason: state.reason, token: client.getAccessToken(), lastAuth: calls[calls.length - 1].auth,
                 log: client.getLog().map((e) => e.text) };
    }""",
    )
    assert result["status"] == 401 and result["code"] == "token_expired" and result["refreshes"] == 1
    assert result["state"] == "signed-out" and result["reason"] == "Your session has ended; log in again."
    assert result["token"] is None and result["lastAuth"] is None
    assert "refresh token rejected → logged out" in result["log"]


def test_a_refresh_that_brings_another_session_is_not_used_to_retry(page):
    """The cookie now belongs to another login (another tab): never repeat a call as someone else."""
    result = run(
        page,
        """async ({ client, server }) => {
        await client.login({ email: "u@example.com", password: "pw" });
        server.sid = "s2";
        server.api.push(() => server.problem(401, "token_expired"));
        const response = await client.fetch("/api/boards", { method: "POST", body: "{}" });
        return { status: response.status, calls: server.calls_to("/api/boards").length,
                 session: client.getSnapshot().sessionId };
    }""",
    )
    assert result == {"status": 401, "calls": 1, "session": "s2"}


def test_a_refresh_answer_after_logout_is_not_written_back(page):
    result = run(
        page,
        """async ({ client, server }) => {
        await client.login({ email: "u@example.com", password: "pw" });
        let release;
        const gate = new Promise((resolve) => { release = resolve; });
        server.refreshAnswer = () => gate.then(() => server.tokenResponse());
        server.api.push(() => server.problem(401, "token_expired"));
        const pending = client.fetch("/api/profiles/me");
        while (server.refreshes === 0) await new Promise((r) => setTimeout(r, 5));
        const loggedOut = client.logout();
        release();
        const response = await pending;
        await loggedOut;
        return { status: response.status, token: client.getAccessToken(), state: client.getSnapshot().status,
                 retried: server.calls_to("/api/profiles/me").length > 1,
                 order: server.calls.map((c) => c.path).slice(-2) };
    }""",
    )
    assert result["status"] == 401 and result["token"] is None and result["state"] == "signed-out"
    assert not result["retried"]
    assert result["order"] == ["/api/auth/refresh", "/api/auth/logout"], "logout waits for the refresh"


def test_restore_without_a_session_is_quietly_signed_out(page):
    result = run(
        page,
        """async ({ client, server }) => {
        server.refreshAnswer = () => server.problem(401, "invalid_refresh_token");
        const state = await client.restore();
        return { status: state.status, reason: state.reason, log: client.getLog().map((e) => e.text) };
    }""",
    )
    assert result == {"status": "signed-out", "reason": None, "log": ["no session to restore → signed out"]}
