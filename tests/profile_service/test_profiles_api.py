"""The profile table of docs/API.md through the HTTP interface, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient

from profile_service import create_app
from profile_service.config import ProfileConfig
from profile_service.context import ProfileContext
from tests.support.tokens import TokenFactory

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    return body


# --- GET /api/profiles/me ---------------------------------------------------------------------


def test_first_access_creates_the_profile_from_the_token(client: FlaskClient, tokens: TokenFactory) -> None:
    response = client.get("/api/profiles/me", headers=tokens.bearer(sub="user-1", name="Ada Lovelace"))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == ["user_id", "name", "bio", "created_at", "updated_at"]
    assert (body["user_id"], body["name"], body["bio"]) == ("user-1", "Ada Lovelace", "")
    assert RFC3339_UTC.fullmatch(body["created_at"]) and body["created_at"] == body["updated_at"]
    created = datetime.strptime(body["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60


def test_second_access_returns_the_same_profile(client: FlaskClient, tokens: TokenFactory) -> None:
    first = client.get("/api/profiles/me", headers=tokens.bearer(sub="user-2", name="Grace")).get_json()
    # A later token with another name does not overwrite the profile: the name is taken once.
    second = client.get("/api/profiles/me", headers=tokens.bearer(sub="user-2", name="Renamed")).get_json()
    assert second == first


# --- PATCH /api/profiles/me -------------------------------------------------------------------


def test_patch_changes_name_and_bio(client: FlaskClient, tokens: TokenFactory) -> None:
    headers = tokens.bearer(sub="user-3", name="Old")
    created = client.get("/api/profiles/me", headers=headers).get_json()
    time.sleep(1.05)  # timestamps are to the second
    response = client.patch(
        "/api/profiles/me", headers=headers, json={"name": "  New Name  ", "bio": "Hello\nworld", "ignored": True}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["bio"]) == ("New Name", "Hello\nworld")
    assert body["created_at"] == created["created_at"] and body["updated_at"] > created["updated_at"]
    assert client.get("/api/profiles/me", headers=headers).get_json() == body
    assert client.get("/api/profiles/user-3").get_json() == body


def test_patch_leaves_absent_fields_alone(client: FlaskClient, tokens: TokenFactory) -> None:
    headers = tokens.bearer(sub="user-4", name="Kept")
    client.patch("/api/profiles/me", headers=headers, json={"bio": "first"})
    body = client.patch("/api/profiles/me", headers=headers, json={"name": "Changed"}).get_json()
    assert (body["name"], body["bio"]) == ("Changed", "first")
    assert client.patch("/api/profiles/me", headers=headers, json={}).get_json() == body


def test_patch_null_bio_clears_it(client: FlaskClient, tokens: TokenFactory) -> None:
    headers = tokens.bearer(sub="user-5")
    client.patch("/api/profiles/me", headers=headers, json={"bio": "something"})
    assert client.patch("/api/profiles/me", headers=headers, json={"bio": None}).get_json()["bio"] == ""


def test_patch_before_any_get_creates_the_profile(client: FlaskClient, tokens: TokenFactory) -> None:
    response = client.patch(
        "/api/profiles/me", headers=tokens.bearer(sub="user-6", name="Token Name"), json={"bio": "new here"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["user_id"], body["name"], body["bio"]) == ("user-6", "Token Name", "new here")


def test_patch_accepts_the_limits(client: FlaskClient, tokens: TokenFactory) -> None:
    response = client.patch("/api/profiles/me", headers=tokens.bearer(), json={"name": "é" * 50, "bio": "ü" * 500})
    assert response.status_code == 200
    assert (response.get_json()["name"], response.get_json()["bio"]) == ("é" * 50, "ü" * 500)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"name": None}, "name"),
        ({"name": 42}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"bio": "x" * 501}, "bio"),
        ({"bio": "nul\u0000byte"}, "bio"),
        # Control characters at an end are refused too, not trimmed away with the spaces.
        ({"name": "Ada\u0085"}, "name"),
        ({"name": "\u000cAda"}, "name"),
        ({"bio": "About me\u000b"}, "bio"),
        ({"bio": "\u0085"}, "bio"),
        ({"bio": ["list"]}, "bio"),
        ([], "body"),
        ("a string", "body"),
    ],
)
def test_patch_rejects_invalid_fields(client: FlaskClient, tokens: TokenFactory, body: object, field: str) -> None:
    headers = tokens.bearer(sub="user-7", name="Unchanged")
    problem = assert_problem(client.patch("/api/profiles/me", headers=headers, json=body), 400, "validation_error")
    assert [error["field"] for error in problem["errors"]] == [field]
    assert all(error["message"] for error in problem["errors"])
    profile = client.get("/api/profiles/me", headers=headers).get_json()
    assert (profile["name"], profile["bio"]) == ("Unchanged", "")


def test_patch_reports_every_invalid_field(client: FlaskClient, tokens: TokenFactory) -> None:
    problem = assert_problem(
        client.patch("/api/profiles/me", headers=tokens.bearer(), json={"name": "", "bio": "x" * 501}),
        400,
        "validation_error",
    )
    assert sorted(error["field"] for error in problem["errors"]) == ["bio", "name"]


@pytest.mark.parametrize("data", [b"{not json", b"", b'{"name": "a"', b'{"name": "\\ud800"}'])
def test_patch_rejects_invalid_json(client: FlaskClient, tokens: TokenFactory, data: bytes) -> None:
    response = client.patch("/api/profiles/me", headers=tokens.bearer(), data=data, content_type="application/json")
    assert_problem(response, 400, "invalid_json")


def test_patch_rejects_a_body_over_the_limit(client: FlaskClient, tokens: TokenFactory) -> None:
    data = b'{"bio": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.patch("/api/profiles/me", headers=tokens.bearer(), data=data, content_type="application/json")
    assert_problem(response, 413, "payload_too_large")


# --- GET /api/profiles/{user_id} ----------------------------------------------------------------


def test_anyone_reads_another_users_profile(client: FlaskClient, tokens: TokenFactory) -> None:
    client.patch("/api/profiles/me", headers=tokens.bearer(sub="author-1", name="Author"), json={"bio": "hi"})
    for headers in ({}, tokens.bearer(sub="reader-1")):
        response = client.get("/api/profiles/author-1", headers=headers)
        assert response.status_code == 200
        body = response.get_json()
        assert (body["user_id"], body["name"], body["bio"]) == ("author-1", "Author", "hi")


@pytest.mark.parametrize("user_id", ["nobody", "%00", "x" * 300, "caf%C3%A9", "%FF"])
def test_unknown_profile_is_not_found(client: FlaskClient, user_id: str) -> None:
    assert_problem(client.get(f"/api/profiles/{user_id}"), 404, "not_found")


def test_a_profile_exists_only_after_its_first_access(client: FlaskClient, tokens: TokenFactory) -> None:
    assert_problem(client.get("/api/profiles/late-user"), 404, "not_found")
    client.get("/api/profiles/me", headers=tokens.bearer(sub="late-user"))
    assert client.get("/api/profiles/late-user").status_code == 200


# --- 401: the common rules of resource services --------------------------------------------------


@pytest.mark.parametrize("method", ["get", "patch"])
@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwdw==", "Token abc"])
def test_missing_token(client: FlaskClient, method: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    # The PATCH body is invalid too: the token is checked before the body.
    response = getattr(client, method)(
        "/api/profiles/me", headers=headers, data=b"{bad json", content_type="application/json"
    )
    assert_problem(response, 401, "token_missing")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("method", ["get", "patch"])
def test_expired_token(client: FlaskClient, tokens: TokenFactory, method: str) -> None:
    past = int(time.time()) - 3600
    headers = tokens.bearer(iat=past, exp=past + 60)
    response = getattr(client, method)("/api/profiles/me", headers=headers, json={"bio": "x"})
    assert_problem(response, 401, "token_expired")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')


def _foreign_key_token(tokens: TokenFactory) -> str:
    return tokens.make(key=ec.generate_private_key(ec.SECP256R1()))


@pytest.mark.parametrize(
    "make",
    [
        lambda tokens: "not-a-jwt",
        lambda tokens: "a.b.c",
        lambda tokens: tokens.make(aud="someone-else"),
        lambda tokens: tokens.make(iss="https://evil.example"),
        lambda tokens: tokens.make(headers={"typ": "JWT"}),
        lambda tokens: tokens.make(headers={"kid": "unknown-kid"}),
        lambda tokens: tokens.make(sid=None),
        lambda tokens: tokens.make()[:-4] + "AAAA",
        _foreign_key_token,
    ],
    ids=["garbage", "segments", "audience", "issuer", "typ", "kid", "claims", "signature", "foreign-key"],
)
@pytest.mark.parametrize("method", ["get", "patch"])
def test_invalid_token(client: FlaskClient, tokens: TokenFactory, make, method: str) -> None:
    response = getattr(client, method)(
        "/api/profiles/me", headers={"Authorization": f"Bearer {make(tokens)}"}, json={"bio": "x"}
    )
    assert_problem(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')


def test_a_rejected_token_creates_no_profile(client: FlaskClient, tokens: TokenFactory) -> None:
    client.get("/api/profiles/me", headers=tokens.bearer(sub="ghost", aud="someone-else"))
    assert_problem(client.get("/api/profiles/ghost"), 404, "not_found")


# --- conventions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "/api/profiles/me"),
        ("post", "/api/profiles/me"),
        ("put", "/api/profiles/me"),
        ("patch", "/api/profiles/someone"),
        ("delete", "/api/profiles/someone"),
    ],
)
def test_wrong_method(client: FlaskClient, method: str, path: str) -> None:
    response = getattr(client, method)(path)
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/api/profiles", "/api/profiles/", "/api/profiles/a/b", "/nowhere", "/"])
def test_unknown_path(client: FlaskClient, path: str) -> None:
    assert_problem(client.get(path), 404, "not_found")


def test_request_id_is_echoed_or_made(client: FlaskClient, tokens: TokenFactory) -> None:
    for path, headers in (
        ("/api/profiles/me", tokens.bearer()),
        ("/api/profiles/me", {}),
        ("/api/profiles/nobody", {}),
    ):
        echoed = client.get(path, headers={**headers, "X-Request-ID": "req-123.abc"})
        assert echoed.headers["X-Request-ID"] == "req-123.abc"
        made = client.get(path, headers={**headers, "X-Request-ID": "bad id\twith spaces"})
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok", "service": "profile_service"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "keys": "ok"}


def test_not_ready_without_public_keys(database_url: str, tmp_path: Path) -> None:
    app = create_app(ProfileConfig(database_url=database_url, jwks_path=tmp_path / "missing.json", app_env="test"))
    try:
        problem = assert_problem(app.test_client().get("/readyz"), 503, "unavailable")
        assert problem["checks"] == {"keys": "no public keys"}
    finally:
        ProfileContext.of(app).engine.dispose()


def test_openapi_lists_the_paths(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    paths = document["paths"]
    assert set(paths) == {"/api/profiles/me", "/api/profiles/{user_id}"}
    assert set(paths["/api/profiles/me"]) == {"get", "patch"}
    assert paths["/api/profiles/me"]["get"]["security"] == [{"bearer": []}]
    assert "401" in paths["/api/profiles/me"]["patch"]["responses"]
    assert "requestBody" in paths["/api/profiles/me"]["patch"]
    assert "security" not in paths["/api/profiles/{user_id}"]["get"]
    profile = document["components"]["schemas"]["ProfilePublic"]
    assert set(profile["properties"]) == {"user_id", "name", "bio", "created_at", "updated_at"}


def test_personal_answers_are_never_stored(client: FlaskClient, tokens: TokenFactory) -> None:
    me = client.get("/api/profiles/me", headers=tokens.bearer(sub="u-cache"))
    assert me.headers["Cache-Control"] == "no-store"
    patched = client.patch("/api/profiles/me", headers=tokens.bearer(sub="u-cache"), json={"bio": "b"})
    assert patched.headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/api/profiles/u-cache").headers.get("Cache-Control", "")
