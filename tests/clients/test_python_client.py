"""The Python client (clients/python) against the real stack: login, the refresh cookie over
http on loopback, one refresh and one retry on token_expired, revocation, logout."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from http.cookiejar import Cookie
from urllib.request import Request

import pytest
from silent_auth_client import AuthError, AuthSession, LoopbackSecureCookies

from tests.support.stack import Stack

PASSWORD = "correct horse battery"
TTL = 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("client-stack"), ACCESS_TOKEN_TTL=str(TTL), JWT_LEEWAY="0").start()
    yield running
    running.stop()


def signed_in(stack: Stack, host: str = "127.0.0.1") -> AuthSession:
    session = AuthSession(stack.url.replace("127.0.0.1", host))
    email = f"py-{uuid.uuid4().hex[:10]}@example.com"
    session.signup(email, PASSWORD, "Py")
    session.login(email, PASSWORD)
    return session


def wait_until_expired() -> None:
    time.sleep(TTL + 1)  # the access token's whole lifetime, and the second `exp` is rounded to


def secure_cookie() -> Cookie:
    return Cookie(
        0, "refresh_token", "v", None, False, "example.com", True, False, "/", True, True, None, False, None, None, {}
    )


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://localhost:8080/api/auth/refresh", True),
        ("http://127.0.0.1:8080/api/auth/refresh", True),
        ("http://127.0.0.2:8080/api/auth/refresh", True),
        ("http://[::1]:8080/api/auth/refresh", True),
        ("http://app.localhost/api/auth/refresh", True),
        ("https://example.com/api/auth/refresh", True),
        ("http://example.com/api/auth/refresh", False),
        ("http://10.0.0.1/api/auth/refresh", False),
        ("http://localhost.example.com/api/auth/refresh", False),
    ],
)
def test_secure_cookies_go_over_http_to_loopback_only(url: str, sent: bool) -> None:
    assert LoopbackSecureCookies().return_ok_secure(secure_cookie(), Request(url)) is sent  # noqa: S310 (no I/O)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_login_keeps_the_refresh_cookie_and_refresh_rotates_it_over_http(stack: Stack, host: str) -> None:
    session = signed_in(stack, host)
    first = session.refresh_token
    assert first and session.access_token
    token = session.refresh()
    assert token != "" and session.refresh_token not in {None, first}, "the Secure cookie was sent and rotated"
    assert session.get("/api/profiles/me").status_code == 200


def test_an_expired_token_is_refreshed_once_and_the_call_retried_once(stack: Stack) -> None:
    session = signed_in(stack)
    wait_until_expired()
    created = session.post("/api/boards", json={"title": "from python", "content": "after a refresh"})
    assert created.status_code == 201, created.text
    assert session.refreshes == 1
    assert session.get("/api/profiles/me").status_code == 200
    assert session.refreshes == 1, "the new token is used from then on"


def test_a_second_401_is_final_and_a_callers_own_header_is_left_alone(stack: Stack) -> None:
    session = signed_in(stack)
    own = session.get("/api/profiles/me", headers={"Authorization": "Bearer not-a-token"})
    assert own.status_code == 401 and session.refreshes == 0
    session.access_token = "not.a.token"  # the server answers invalid_token: refreshed, retried with a good one
    assert session.get("/api/profiles/me").status_code == 200
    assert session.refreshes == 1


def test_a_revoked_session_is_not_refreshed(stack: Stack) -> None:
    session = signed_in(stack)
    other = AuthSession(stack.url)
    other.cookies.update(session.cookies)
    other.logout()  # the same session, ended from elsewhere
    answer = session.get("/api/profiles/me")
    assert answer.status_code == 401 and answer.json()["code"] == "token_revoked"
    assert session.refreshes == 0 and session.access_token is None


def test_logout_ends_the_session_and_refresh_then_fails_with_a_problem(stack: Stack) -> None:
    session = signed_in(stack)
    session.logout()
    assert session.access_token is None and session.refresh_token is None
    with pytest.raises(AuthError) as refused:
        session.refresh()
    assert refused.value.status == 401 and refused.value.code in {"invalid_refresh_token", "refresh_token_missing"}
    with pytest.raises(AuthError) as wrong:
        AuthSession(stack.url).login("nobody@example.com", PASSWORD)
    assert (wrong.value.status, wrong.value.code) == (401, "invalid_credentials")
