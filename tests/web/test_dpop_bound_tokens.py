"""DPoP-bound access tokens in real Chromium against the real stack with server nonces
(`DPOP_NONCE=true`) and bound access tokens (`ACCESS_TOKEN_BINDING=dpop`): what the page sends is
read from the requests Chromium made, every proof is decoded, and those sent with an access token
are checked with the resource services' own verifier too (signature, `htm`, `htu`, `iat`, `ath`)."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Request, Response, expect

from shared.dpop import ProofVerifier, b64url_sha256, jwk_thumbprint
from tests.support.stack import Stack
from tests.web.browser_app import REFRESH_PATH, WebApp, sign_up_by_api, thumbprint, wait_until
from tests.web.conftest import web_stack

LOGIN, LOGOUT, ME = "/api/auth/login", "/api/auth/logout", "/api/profiles/me"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The web tests' stack, with nonces and bound tokens."""
    with web_stack(
        tmp_path_factory.mktemp("web-dpop-bound-stack"), DPOP_NONCE="true", ACCESS_TOKEN_BINDING="dpop"
    ) as running:
        yield running


def _segment(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@dataclass
class Sent:
    """One /api request as Chromium sent it, and its answer."""

    method: str
    path: str
    headers: dict[str, str]
    status: int | None = None
    answer_headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def proof(self) -> str | None:
        return self.headers.get("dpop")

    def claims(self) -> dict[str, Any]:
        assert self.proof, f"{self.method} {self.path} carries no DPoP proof"
        return dict(_segment(self.proof.split(".")[1]))

    def proof_header(self) -> dict[str, Any]:
        assert self.proof
        return dict(_segment(self.proof.split(".")[0]))


class Wire:
    """Every /api request of a browser context with its headers, status, answer headers and, for
    login and refresh, the JSON body (the token response), in the order they were sent."""

    def __init__(self, context: BrowserContext) -> None:
        self.sent: list[Sent] = []
        self._by_request: dict[int, Sent] = {}
        self._lock = threading.Lock()
        context.on("request", self._on_request)
        context.on("response", self._on_response)

    def _on_request(self, request: Request) -> None:
        path = urlsplit(request.url).path
        if path.startswith("/api/"):
            with self._lock:
                self._by_request[id(request)] = sent = Sent(request.method, path, dict(request.headers))
                self.sent.append(sent)

    def _on_response(self, response: Response) -> None:
        with self._lock:
            sent = self._by_request.get(id(response.request))
        if sent is None:
            return
        if sent.path in (LOGIN, REFRESH_PATH) and response.status == 200:
            sent.body = response.json()
        sent.answer_headers = dict(response.headers)
        sent.status = response.status

    def to(self, method: str, path: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.method == method and s.path == path]


def answered(wire: Wire, method: str, path: str, count: int, app: WebApp) -> list[Sent]:
    """The first `count` requests to `path`, once each has its answer."""

    def done() -> bool:
        calls = wire.to(method, path)
        return len(calls) >= count and all(c.status is not None for c in calls[:count])

    wait_until(done, app.page, f"{count} answered {method} {path}")
    return wire.to(method, path)[:count]


def token_claims(token: str) -> dict[str, Any]:
    return dict(_segment(token.split(".")[1]))


def check_bound_call(sent: Sent, origin: str, key: str) -> tuple[str, dict[str, Any]]:
    """`Authorization: DPoP <token>` and a proof of the session's key for this request with the
    token's hash, verified as the resource services verify it. Returns (token, proof claims)."""
    scheme, _, token = sent.headers.get("authorization", "").partition(" ")
    assert scheme == "DPoP", f"{sent.method} {sent.path} went out as {scheme!r}"
    assert token_claims(token)["cnf"] == {"jkt": key}, "the access token is bound to the page's key"
    header = sent.proof_header()
    assert set(header) == {"typ", "alg", "jwk"} and header["typ"] == "dpop+jwt" and header["alg"] == "ES256"
    assert jwk_thumbprint(header["jwk"]) == key
    claims = sent.claims()
    assert claims["htm"] == sent.method
    assert claims["htu"] == origin + sent.path
    assert claims.get("ath") == b64url_sha256(token.encode()), "the proof carries the token's hash"
    # The server's own checks (signature, htm, htu, iat window, ath), with a fresh replay cache.
    ProofVerifier(public_origin=origin).verify(sent.proof or "", method=sent.method, path=sent.path, access_token=token)
    return token, claims


def test_bound_tokens_with_nonces_login_call_expiry_refresh_and_logout(
    stack: Stack, app: WebApp, context: BrowserContext, base_url: str
) -> None:
    wire = Wire(context)
    app.log_in(sign_up_by_api(stack.url, "Bound"))
    key = thumbprint(app)

    # Login: the first proof has no nonce (the page has heard none yet) and is told to use one; the
    # same login is sent again with it and binds the session and its access tokens.
    asked, logged_in = answered(wire, "POST", LOGIN, 2, app)
    assert asked.status == 401 and "nonce" not in asked.claims()
    assert asked.answer_headers["www-authenticate"].startswith('DPoP error="use_dpop_nonce"')
    nonce = asked.answer_headers["dpop-nonce"]
    assert logged_in.status == 200 and logged_in.claims()["nonce"] == nonce
    assert logged_in.body["token_type"] == "DPoP"
    assert jwk_thumbprint(logged_in.proof_header()["jwk"]) == key
    access = logged_in.body["access_token"]

    # The profile call the page makes after logging in goes out bound, and is served.
    (first_call,) = answered(wire, "GET", ME, 1, app)
    token, first_claims = check_bound_call(first_call, base_url, key)
    assert token == access
    assert first_call.status == 200

    # The token expires; the next call is refused as expired, refreshes silently (a proof with the
    # nonce), and is sent again with the new token and a new proof of it.
    app.wait_until_expired()
    refreshes_before = len(wire.to("POST", REFRESH_PATH))
    app.page.get_by_role("link", name="My profile").click()
    expect(app.page.locator(".profile-name")).to_have_text("Bound")
    expired, retried = answered(wire, "GET", ME, 3, app)[1:]
    assert expired.status == 401
    assert check_bound_call(expired, base_url, key)[0] == access
    refresh = wire.to("POST", REFRESH_PATH)[refreshes_before:]
    assert [r.status for r in refresh] == [200]
    assert refresh[0].claims()["htu"] == base_url + REFRESH_PATH and refresh[0].claims()["nonce"]
    assert jwk_thumbprint(refresh[0].proof_header()["jwk"]) == key
    renewed = refresh[0].body["access_token"]
    assert renewed != access
    new_token, retried_claims = check_bound_call(retried, base_url, key)
    assert new_token == renewed and retried.status == 200
    assert len({first_claims["jti"], expired.claims()["jti"], retried_claims["jti"]}) == 3, "a new proof each time"
    app.expect_log(re.compile(r"^access token expired → refreshed silently → retried GET /api/profiles/me ✓"))

    # Logout sends a proof of the key (with the nonce) and ends the session.
    with app.page.expect_request(lambda request: request.url.endswith(LOGOUT)):
        app.page.get_by_role("button", name="Log out", exact=True).click()
    app.expect_signed_out()
    (logout,) = answered(wire, "POST", LOGOUT, 1, app)
    assert logout.status == 204
    assert logout.claims()["htm"] == "POST" and logout.claims()["htu"] == base_url + LOGOUT
    assert logout.claims()["nonce"] and jwk_thumbprint(logout.proof_header()["jwk"]) == key
