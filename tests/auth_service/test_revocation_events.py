"""Auth announces every revocation on the feed stream, and says so when it cannot."""

from __future__ import annotations

import logging
import time
import uuid

import jwt
import redis as redis_lib

from shared.redis_client import create_redis_client
from tests.auth_service.conftest import PASSWORD, bearer, refresh_cookie

STREAM = "auth:revocations"


def events(redis_url: str) -> list[dict[str, str]]:
    client = create_redis_client(redis_url, decode_responses=True)
    return [fields for _id, fields in client.xrange(STREAM)]


def bearer_subject(access_token: str) -> str:
    return jwt.decode(access_token, options={"verify_signature": False})["sub"]


def login(app, email: str):
    device = app.test_client()
    response = device.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    return device, response.json["access_token"], refresh_cookie(response).split(".", 1)[0]


def test_logout_revoke_one_logout_all_and_theft_are_announced(make_app, redis_url):
    app = make_app(refresh_reuse_grace=0)  # a replaced refresh token presented again is theft at once
    app.test_client().post("/api/auth/signup", json={"email": "ann@example.com", "password": PASSWORD, "name": "A"})
    user = {"email": "ann@example.com"}
    laptop, laptop_access, laptop_sid = login(app, user["email"])
    _phone, _, phone_sid = login(app, user["email"])
    tablet, _, tablet_sid = login(app, user["email"])

    assert laptop.delete(f"/api/auth/sessions/{phone_sid}", headers=bearer(laptop_access)).status_code == 204
    tablet_token = tablet.get_cookie("refresh_token", path="/api/auth").value
    assert tablet.post("/api/auth/logout").status_code == 204
    tablet.set_cookie("refresh_token", tablet_token, path="/api/auth")
    assert tablet.post("/api/auth/logout").status_code == 204  # a retry: announced again, harmlessly
    tablet.set_cookie("refresh_token", f"{tablet_sid}.{'x' * 43}", path="/api/auth")
    assert tablet.post("/api/auth/logout").status_code == 204  # not its token: nothing announced
    stolen = laptop.get_cookie("refresh_token", path="/api/auth").value
    assert laptop.post("/api/auth/refresh").status_code == 200
    laptop.set_cookie("refresh_token", stolen, path="/api/auth")
    assert laptop.post("/api/auth/refresh").json["code"] == "invalid_refresh_token"  # reuse: theft
    _, last_access, _ = login(app, user["email"])
    before_logout_all = time.time()
    assert app.test_client().post("/api/auth/logout-all", headers=bearer(last_access)).status_code == 204
    after_logout_all = time.time()

    announced = events(redis_url)
    assert [(e["type"], e.get("sid") or e.get("sub")) for e in announced] == [
        ("session", phone_sid),
        ("session", tablet_sid),
        ("session", tablet_sid),
        ("session", laptop_sid),
        ("user", announced[-1]["sub"]),
    ]
    assert announced[-1]["sub"] == bearer_subject(last_access)
    cut_off = int(announced[-1]["before"])
    # Taken while the request ran, rounded up: it covers tokens issued in that second (however slow the request).
    assert before_logout_all <= cut_off <= after_logout_all + 1
    # Each event says when it stops mattering: after the longest token lifetime, leeway and margin.
    for event in announced:
        assert 3600 + 5 + 60 - 2 <= float(event["until"]) - before_logout_all <= 3600 + 5 + 60 + 2


def test_a_session_ended_by_the_cap_is_announced(make_app, redis_url):
    app = make_app(max_sessions_per_user=1)
    app.test_client().post("/api/auth/signup", json={"email": "cap1@example.com", "password": PASSWORD, "name": "C"})
    _, _, first_sid = login(app, "cap1@example.com")
    login(app, "cap1@example.com")
    assert [(e["type"], e["sid"]) for e in events(redis_url)] == [("session", first_sid)]


def test_a_revocation_that_cannot_be_announced_answers_503_and_logs(
    make_app, redis_server, standalone_redis_url, caplog
):
    redis_url = standalone_redis_url  # ACL users of one server
    # A Redis user that may do everything but write the stream: the session ends, the announcement fails.
    name = f"no-feed-{uuid.uuid4().hex[:8]}"
    redis_lib.Redis.from_url(redis_url).execute_command(
        "ACL", "SETUSER", name, "on", "nopass", "~*", "&*", "+@all", "-xadd"
    )
    app = make_app(redis_url=f"redis://{name}:x@127.0.0.1:{redis_server.port}/0")
    client = app.test_client()
    client.post("/api/auth/signup", json={"email": "lost@example.com", "password": PASSWORD, "name": "L"})
    assert client.post("/api/auth/login", json={"email": "lost@example.com", "password": PASSWORD}).status_code == 200
    with caplog.at_level(logging.ERROR):
        response = client.post("/api/auth/logout")
    assert response.status_code == 503 and response.json["code"] == "unavailable"
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "revocation_publish_failed"]
    session_id = client.get_cookie("refresh_token", path="/api/auth").value.split(".", 1)[0]  # kept by the 503
    assert events(redis_url) == []

    # The caller retries once the feed can be written: the ended session is announced after all.
    redis_lib.Redis.from_url(redis_url).execute_command("ACL", "SETUSER", name, "+xadd")
    assert client.post("/api/auth/logout").status_code == 204
    assert [(e["type"], e["sid"]) for e in events(redis_url)] == [("session", session_id)]
    client.set_cookie("refresh_token", f"{session_id}.{'y' * 43}", path="/api/auth")
    assert client.post("/api/auth/refresh").status_code == 401  # the session did end
