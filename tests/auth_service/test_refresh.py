"""POST /api/auth/refresh and /logout: rotation, reuse detection, grace window, CSRF, expiry."""

import time

import pytest

from tests.auth_service.conftest import bearer, refresh_cookie


def _refresh(client, token=None, **headers):
    if token is not None:
        client.set_cookie("refresh_token", token, path="/api/auth")
    return client.post("/api/auth/refresh", headers=headers)


def _login(auth):
    user = auth.signup()
    response = auth.login(user["email"])
    return user, response.json["access_token"], refresh_cookie(response)


def test_refresh_rotates_the_token_and_issues_a_new_access_token(auth, client):
    user, access, first = _login(auth)
    response = _refresh(client)
    assert response.status_code == 200
    assert set(response.json) == {"access_token", "token_type", "expires_in", "user"}
    assert response.json["user"] == user
    assert response.json["access_token"] != access
    second = refresh_cookie(response)
    assert second and second != first
    assert second.split(".")[0] == first.split(".")[0]  # same session
    assert _refresh(client, second).status_code == 200
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("refresh_token=")]
    assert header == f"refresh_token={second}; Max-Age=1209600; Secure; HttpOnly; Path=/api/auth; SameSite=Strict"


def test_missing_cookie_is_rejected_and_cleared(client):
    response = client.post("/api/auth/refresh")
    assert response.status_code == 401
    assert response.json["code"] == "invalid_refresh_token"
    [header] = response.headers.getlist("Set-Cookie")
    assert header.startswith("refresh_token=;") and "Max-Age=0" in header and "Path=/api/auth" in header


@pytest.mark.parametrize("token", ["garbage", "a" * 32 + "." + "b" * 43, "x" * 3000, "." * 80])
def test_unknown_or_malformed_tokens_are_rejected(client, token):
    response = _refresh(client, token)
    assert response.status_code == 401
    assert response.json["code"] == "invalid_refresh_token"
    assert refresh_cookie(response) == ""


def test_a_guessed_secret_for_a_real_session_changes_nothing(auth, client):
    _, _, token = _login(auth)
    session_id = token.split(".")[0]
    assert _refresh(client, f"{session_id}.0.{'A' * 43}").status_code == 401
    assert _refresh(client, token).status_code == 200  # the real session is untouched


def test_a_forged_older_generation_cannot_revoke_the_session(auth, client):
    # An older generation presented is theft, so a forger would love to name one: without the
    # refresh key its proof is wrong, and the session lives on.
    _, _, first = _login(auth)
    second = refresh_cookie(_refresh(client, first))
    third = refresh_cookie(_refresh(client, second))
    session_id, _, proof = first.split(".")
    for forged in (f"{session_id}.0.{'A' * 43}", f"{session_id}.0.{proof[::-1]}", f"{session_id}.1.{proof}"):
        assert _refresh(client, forged).status_code == 401
    assert _refresh(client, third).status_code == 200


def test_any_older_generation_revokes_the_session_however_many_rotations_ago(auth, client):
    _, _, first = _login(auth)
    tokens = [first]
    for _ in range(40):
        tokens.append(refresh_cookie(_refresh(client, tokens[-1])))
    assert _refresh(client, tokens[5]).status_code == 401  # theft: the whole session ends
    assert _refresh(client, tokens[-1]).status_code == 401


def test_predecessor_within_grace_gets_the_current_token(auth, client):
    _, _, first = _login(auth)
    second = refresh_cookie(_refresh(client, first))
    replay = _refresh(client, first)  # e.g. the same client racing itself
    assert replay.status_code == 200
    assert refresh_cookie(replay) == second  # handed the current token: no fork
    assert _refresh(client, second).status_code == 200


def test_older_token_revokes_the_whole_session(auth, client):
    _, _, first = _login(auth)
    second = refresh_cookie(_refresh(client, first))
    third = refresh_cookie(_refresh(client, second))
    theft = _refresh(client, first)
    assert theft.status_code == 401
    assert theft.json["code"] == "invalid_refresh_token"
    assert _refresh(client, third).status_code == 401  # the newest token stops working too


def test_predecessor_after_grace_revokes_the_session(make_app):
    app = make_app(refresh_reuse_grace=1)
    client = app.test_client()
    client.post("/api/auth/signup", json={"email": "g@example.com", "password": "long enough", "name": "G"})
    first = refresh_cookie(client.post("/api/auth/login", json={"email": "g@example.com", "password": "long enough"}))
    second = refresh_cookie(_refresh(client, first))
    time.sleep(1.2)
    assert _refresh(client, first).status_code == 401
    assert _refresh(client, second).status_code == 401


def test_session_lifetime_is_absolute(make_app):
    app = make_app(refresh_token_ttl=2)
    client = app.test_client()
    client.post("/api/auth/signup", json={"email": "t@example.com", "password": "long enough", "name": "T"})
    token = refresh_cookie(client.post("/api/auth/login", json={"email": "t@example.com", "password": "long enough"}))
    time.sleep(1)
    token = refresh_cookie(_refresh(client, token))
    assert token
    time.sleep(1.3)  # past two seconds after login: refreshing did not extend the limit
    assert _refresh(client, token).status_code == 401


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"Origin": "http://localhost:8080"}, 200),
        ({"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}, 200),
        ({"Sec-Fetch-Site": "same-site"}, 200),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": "http://localhost:8081"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "http://localhost:8080", "Sec-Fetch-Site": "cross-site"}, 403),
    ],
)
def test_csrf_defence_on_refresh_and_logout(auth, client, headers, status):
    _login(auth)
    response = client.post("/api/auth/refresh", headers=headers)
    assert response.status_code == status
    if status == 403:
        assert response.json["code"] == "csrf_rejected"
        assert refresh_cookie(response) is None  # the session is left alone
        assert client.post("/api/auth/logout", headers=headers).status_code == 403
        assert client.post("/api/auth/refresh").status_code == 200


def test_allowed_origins_are_configurable(make_app):
    client = make_app(allowed_origins="https://app.example.com, https://admin.example.com").test_client()
    assert client.post("/api/auth/refresh", headers={"Origin": "https://app.example.com"}).status_code == 401
    assert client.post("/api/auth/refresh", headers={"Origin": "http://localhost:8080"}).status_code == 403


def test_logout_revokes_the_session_and_clears_the_cookie(auth, client):
    _, access, token = _login(auth)
    response = client.post("/api/auth/logout")
    assert response.status_code == 204
    assert refresh_cookie(response) == ""
    assert _refresh(client, token).status_code == 401
    assert client.get("/api/auth/sessions", headers=bearer(access)).status_code == 401


def test_logout_is_idempotent(auth, client):
    _, _, token = _login(auth)
    assert client.post("/api/auth/logout").status_code == 204
    client.set_cookie("refresh_token", token, path="/api/auth")
    assert client.post("/api/auth/logout").status_code == 204
    assert client.post("/api/auth/logout").status_code == 204
    client.set_cookie("refresh_token", "junk", path="/api/auth")
    assert client.post("/api/auth/logout").status_code == 204


# Origins that resemble the gateway's own (http://localhost:8080) but are not it. Parametrised
# by endpoint, so the same table can guard login and signup once they check the Origin too.
LOOK_ALIKE_ORIGINS = [
    "http://localhost:8080.evil.example",  # a prefix match would let this through
    "http://localhost:80",  # a prefix of the port
    "http://localhost:8081",  # another port
    "https://localhost:8080",  # another scheme
    "http://localhost",  # no port
    "http://evil.localhost:8080",  # a subdomain
    "http://localhost:8080/path",  # a trailing path is not an origin
    "http://localhost:8080@evil.example",  # userinfo trick
    "HTTP://LOCALHOST:8080",  # browsers send origins in lower case
    "null",  # sandboxed frames, file: pages, some redirects
    "",
]
COOKIE_ENDPOINTS = ["/api/auth/refresh", "/api/auth/logout"]


@pytest.mark.parametrize("endpoint", COOKIE_ENDPOINTS)
def test_look_alike_origins_are_rejected(auth, client, endpoint):
    _login(auth)
    for origin in LOOK_ALIKE_ORIGINS:  # one login for the whole table keeps this quick
        response = client.post(endpoint, headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert response.json["code"] == "csrf_rejected"
        assert response.json["title"] == "Forbidden"
        assert response.headers["Content-Type"] == "application/problem+json"
        assert refresh_cookie(response) is None, origin  # the session is left alone
    cross_site = client.post(endpoint, headers={"Sec-Fetch-Site": "cross-site"})
    assert (cross_site.status_code, cross_site.json["code"], cross_site.json["title"]) == (
        403,
        "csrf_rejected",
        "Forbidden",
    )
    assert client.post("/api/auth/refresh").status_code == 200


@pytest.mark.parametrize("endpoint", COOKIE_ENDPOINTS)
def test_the_gateways_own_origin_is_accepted(auth, client, endpoint):
    for origin in ("http://localhost:8080", "http://localhost:8080/", "http://127.0.0.1:8080"):
        _login(auth)
        assert client.post(endpoint, headers={"Origin": origin}).status_code in {200, 204}, origin
