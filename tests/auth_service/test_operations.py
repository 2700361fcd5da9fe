"""Health, readiness, OpenAPI, request ids, and outages answered with 503 instead of 500 or a hang."""

import time

import psycopg
import pytest

from auth_service.context import AuthContext
from shared.redis_client import REDIS_RETRIES, REDIS_TIMEOUT_SECONDS
from tests.auth_service.conftest import PASSWORD
from tests.support.backends import POSTGRES_ADMIN_URL, free_port


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok", "service": "auth_service"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["checks"] == {"database": "ok", "redis": "ok", "keys": "ok"}


def test_openapi_documents_every_route_from_the_schemas(client):
    document = client.get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in [
        ("/api/auth/signup", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/refresh", "post"),
        ("/api/auth/logout", "post"),
        ("/api/auth/logout-all", "post"),
        ("/api/auth/sessions", "get"),
        ("/api/auth/sessions/{session_id}", "delete"),
        ("/.well-known/jwks.json", "get"),
        ("/api/auth/jwks.json", "get"),
    ]:
        assert method in paths[path], (path, method)
    signup = document["components"]["schemas"]["SignupRequest"]
    assert signup["properties"]["password"]["minLength"] == 8
    assert signup["properties"]["password"]["maxLength"] == 128
    assert paths["/api/auth/sessions"]["get"]["security"] == [{"bearer": []}]
    assert "409" in paths["/api/auth/signup"]["post"]["responses"]


def test_request_id_is_echoed_or_created(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    for insane in ["a" * 500, "bad id with spaces", "<script>", "line\\nbreak"]:
        generated = client.get("/healthz", headers={"X-Request-ID": insane}).headers["X-Request-ID"]
        assert generated != insane and len(generated) == 32
    problem = client.get("/missing", headers={"X-Request-ID": "trace-1"})
    assert problem.headers["X-Request-ID"] == "trace-1"


def test_redis_down_gives_503_quickly(make_app):
    app = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = app.test_client()
    client.post("/api/auth/signup", json={"email": "r@example.com", "password": PASSWORD, "name": "R"})
    for call in (
        lambda: client.post("/api/auth/login", json={"email": "r@example.com", "password": PASSWORD}),
        lambda: (
            # A token auth made (its proof checks out), so that the refresh has to ask Redis.
            client.set_cookie(
                "refresh_token", AuthContext.of(app).accounts.sessions.tokens.make("a" * 32, 0), path="/api/auth"
            ),
            client.post("/api/auth/refresh"),
        )[1],
        lambda: client.post("/api/auth/logout"),
    ):
        started = time.monotonic()
        response = call()
        assert time.monotonic() - started < REDIS_TIMEOUT_SECONDS * (1 + REDIS_RETRIES) + 1.0  # documented bound
        assert response.status_code == 503
        assert response.json["code"] == "unavailable"
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["Retry-After"] == "1"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["code"] == "unavailable"
    assert ready.headers["Retry-After"] == "1"
    assert set(ready.json["checks"]) == {"redis"}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_database_down_gives_503(make_app, database_url):
    client = make_app().test_client()
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    response = client.post("/api/auth/signup", json={"email": "d@example.com", "password": PASSWORD, "name": "D"})
    assert response.status_code == 503
    assert response.json["code"] == "unavailable"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "database" in ready.json["checks"]
