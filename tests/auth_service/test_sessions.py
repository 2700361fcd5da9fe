"""Session list, revoking one session, logging out everywhere; Bearer authentication on auth."""

from tests.auth_service.conftest import PASSWORD, bearer, refresh_cookie


def _second_device(app, email):
    device = app.test_client()
    response = device.post("/api/auth/login", json={"email": email, "password": PASSWORD},
                           headers={"User-Agent": "Phone/1.0"})
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
    other = next(s for s in client.get("/api/auth/sessions", headers=bearer(access)).json["sessions"]
                 if not s["current"])
    assert client.delete(f"/api/auth/sessions/{other['id']}", headers=bearer(access)).status_code == 204
    assert device.post("/api/auth/refresh").status_code == 401
    assert client.post("/api/auth/refresh").status_code == 200
    assert len(client.get("/api/auth/sessions", headers=bearer(access)).json["sessions"]) == 1


def test_another_users_session_is_not_found(app, auth, client):
    _, access = auth.signup_and_login()
    intruder = app.test_client()
    intruder.post("/api/auth/signup", json={"email": "eve@example.com", "password": PASSWORD, "name": "Eve"})
    eve_access = intruder.post("/api/auth/login", json={"email": "eve@example.com", "password": PASSWORD}
                               ).json["access_token"]
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
    for method, path in [("GET", "/api/auth/sessions"), ("POST", "/api/auth/logout-all"),
                         ("DELETE", "/api/auth/sessions/x")]:
        missing = client.open(path, method=method)
        assert missing.status_code == 401
        assert missing.json["code"] == "token_missing"
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        bad = client.open(path, method=method, headers={"Authorization": "Bearer not.a.token"})
        assert bad.status_code == 401 and bad.json["code"] == "invalid_token"
        assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]


def test_a_well_signed_token_for_an_unknown_session_is_rejected(client, tokens):
    # Signed with the real key, but no such session exists: auth checks its own sessions.
    response = client.get("/api/auth/sessions", headers=tokens.bearer())
    assert response.status_code == 401
    assert response.json["code"] == "invalid_token"


def test_expired_access_token_is_token_expired(client, tokens, auth):
    past = 1_000_000
    response = client.get("/api/auth/sessions", headers=tokens.bearer(iat=past, exp=past + 60))
    assert response.status_code == 401
    assert response.json["code"] == "token_expired"
