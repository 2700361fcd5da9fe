"""Session list, revoking one session, logging out everywhere; Bearer authentication on auth."""

import pytest

from tests.auth_service.conftest import PASSWORD, bearer, refresh_cookie


def _second_device(app, email):
    device = app.test_client()
    response = device.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD}, headers={"User-Agent": "Phone/1.0"}
    )
    return device, response.json["access_token"]


def test_sessions_list_marks_the_current_one(app, auth, client):
    user, access = auth.signup_and_login()
    _second_device(app, user["email"])
    response = client.get("/api/auth/sessions", headers=bearer(access))
    assert response.status_code == 200
    sessions = response.json["sessions"]
    assert len(sessions) == 2
    assert all(set(s) == {"id", "created_at", "last_used_at", "user_agent", "current"} for s in sessions)
    assert [s["current"] for s in sessions].count(True) == 1
    assert "Phone/1.0" in {s["user_agent"] for s in sessions}
    assert all(s["created_at"].endswith("Z") and len(s["created_at"]) == 20 for s in sessions)


def test_revoking_one_session_ends_only_that_one(app, auth, client):
    user, access = auth.signup_and_login()
    device, _ = _second_device(app, user["email"])
    other = next(
        s for s in client.get("/api/auth/sessions", headers=bearer(access)).json["sessions"] if not s["current"]
    )
    assert client.delete(f"/api/auth/sessions/{other['id']}", headers=bearer(access)).status_code == 204
    assert device.post("/api/auth/refresh").status_code == 401
    assert client.post("/api/auth/refresh").status_code == 200
    assert len(client.get("/api/auth/sessions", headers=bearer(access)).json["sessions"]) == 1


def test_another_users_session_is_not_found(app, auth, client):
    _, access = auth.signup_and_login()
    intruder = app.test_client()
    intruder.post("/api/auth/signup", json={"email": "eve@example.com", "password": PASSWORD, "name": "Eve"})
    eve_access = intruder.post("/api/auth/login", json={"email": "eve@example.com", "password": PASSWORD}).json[
        "access_token"
    ]
    victim_session = client.get("/api/auth/sessions", headers=bearer(access)).json["sessions"][0]["id"]
    response = intruder.delete(f"/api/auth/sessions/{victim_session}", headers=bearer(eve_access))
    assert response.status_code == 404
    assert response.json["code"] == "not_found"
    assert client.post("/api/auth/refresh").status_code == 200
    assert client.delete("/api/auth/sessions/does-not-exist", headers=bearer(access)).status_code == 404


def test_logout_all_ends_every_session(app, auth, client):
    user, access = auth.signup_and_login()
    device, device_access = _second_device(app, user["email"])
    response = client.post("/api/auth/logout-all", headers=bearer(access))
    assert response.status_code == 204
    assert refresh_cookie(response) == ""
    assert device.post("/api/auth/refresh").status_code == 401
    assert client.post("/api/auth/refresh").status_code == 401
    assert client.get("/api/auth/sessions", headers=bearer(device_access)).status_code == 401


def test_bearer_endpoints_need_a_valid_token(client, tokens):
    for method, path in [
        ("GET", "/api/auth/sessions"),
        ("POST", "/api/auth/logout-all"),
        ("DELETE", "/api/auth/sessions/x"),
    ]:
        missing = client.open(path, method=method)
        assert missing.status_code == 401
        assert missing.json["code"] == "token_missing"
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        bad = client.open(path, method=method, headers={"Authorization": "Bearer not.a.token"})
        assert bad.status_code == 401 and bad.json["code"] == "invalid_token"
        assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]


def test_a_well_signed_token_for_an_unknown_session_is_rejected(client, tokens):
    # Signed with the real key, but no such session exists: auth checks its own sessions, and
    # answers as the resource services do for a revoked session.
    response = client.get("/api/auth/sessions", headers=tokens.bearer())
    assert response.status_code == 401
    assert response.json["code"] == "token_revoked"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')


def test_expired_access_token_is_token_expired(client, tokens, auth):
    past = 1_000_000
    response = client.get("/api/auth/sessions", headers=tokens.bearer(iat=past, exp=past + 60))
    assert response.status_code == 401
    assert response.json["code"] == "token_expired"


def test_past_the_session_cap_the_oldest_session_ends(make_app):
    app = make_app(max_sessions_per_user=3)
    first = app.test_client()
    first.post("/api/auth/signup", json={"email": "cap@example.com", "password": PASSWORD, "name": "Cap"})
    devices = [first] + [app.test_client() for _ in range(3)]
    accesses = [_second_device_of(device, "cap@example.com") for device in devices]
    assert first.post("/api/auth/refresh").status_code == 401  # the oldest ended
    assert all(device.post("/api/auth/refresh").status_code == 200 for device in devices[1:])
    assert len(devices[-1].get("/api/auth/sessions", headers=bearer(accesses[-1])).json["sessions"]) == 3


def test_sessions_that_ended_early_do_not_count_against_the_cap(make_app):
    app = make_app(max_sessions_per_user=3)
    keeper = app.test_client()
    keeper.post("/api/auth/signup", json={"email": "cap@example.com", "password": PASSWORD, "name": "Cap"})
    _second_device_of(keeper, "cap@example.com")
    # A session revoked for reuse leaves its id in the user's index; it must not cost a live one.
    for _ in range(3):
        thief = app.test_client()
        _second_device_of(thief, "cap@example.com")
        stolen = refresh_cookie(thief.post("/api/auth/refresh"))
        thief.post("/api/auth/refresh")
        thief.post("/api/auth/refresh")  # now `stolen` is older than the predecessor
        thief.set_cookie("refresh_token", stolen, path="/api/auth")
        assert thief.post("/api/auth/refresh").status_code == 401  # an older token: theft, the session ends
    others = [app.test_client() for _ in range(2)]
    for other in others:
        _second_device_of(other, "cap@example.com")
    assert keeper.post("/api/auth/refresh").status_code == 200
    assert all(other.post("/api/auth/refresh").status_code == 200 for other in others)


def _second_device_of(device, email):
    response = device.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    return response.json["access_token"]


def test_every_auth_answer_but_the_public_keys_is_never_stored(app, auth, client):
    user = auth.signup()
    signup = client.post("/api/auth/signup", json={"email": "s2@example.com", "password": PASSWORD, "name": "S"})
    assert signup.headers["Cache-Control"] == "no-store"  # it carries the email
    access = auth.login(user["email"]).json["access_token"]
    assert client.get("/api/auth/sessions", headers=bearer(access)).headers["Cache-Control"] == "no-store"
    assert auth.login(user["email"], password="wrong-pass").headers["Cache-Control"] == "no-store"
    assert client.post("/api/auth/refresh").headers["Cache-Control"] == "no-store"
    assert app.test_client().get("/api/auth/jwks.json").headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/auth/login", 405),  # a known path, the wrong method
        ("DELETE", "/api/auth/sessions", 405),
        ("GET", "/api/auth/nothing", 404),  # no route at all: refused before any view runs
        ("POST", "/api/auth/login/", 404),
    ],
)
def test_routing_refusals_under_api_auth_are_never_stored_either(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Cache-Control"] == "no-store"
