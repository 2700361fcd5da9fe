"""Fixtures for the auth service: an app on a real Redis and a real database, and a client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth_service import create_app
from auth_service.config import AuthConfig
from auth_service.context import AuthContext
from auth_service.migrations import HISTORY
from tests.support.backends import RedisServer
from tests.support.schemas import migrate

PASSWORD = "correct horse battery"
# Cheap argon2id so tests stay fast; production uses argon2-cffi's defaults. Admission control is
# roomy here, so tests that race logins for other reasons are not shed; test_hash_admission.py sets it tight.
CHEAP_ARGON2 = {
    "argon2_time_cost": 1,
    "argon2_memory_cost": 1024,
    "argon2_parallelism": 1,
    "password_hash_concurrency": 4,
    "password_hash_queue": 64,
    "password_hash_queue_timeout_ms": 10_000,
}


# The auth test table runs on each Redis topology auth supports. The topologies run on SQLite only:
# the database and the Redis topology are independent, and PostgreSQL × standalone covers the other.
TOPOLOGIES = ("standalone", "sentinel", "cluster")


@pytest.fixture(params=TOPOLOGIES)
def redis_url(request: pytest.FixtureRequest, redis_server: RedisServer) -> str:
    """An empty Redis of each topology (standalone, behind Sentinel, Redis Cluster), as a REDIS_URL."""
    if request.param == "standalone":
        return request.getfixturevalue("standalone_redis_url")
    return request.getfixturevalue(f"redis_{request.param}_url")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    skipped = [
        item
        for item in items
        if here in Path(str(item.fspath)).parents
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database_url") == "postgresql"
        and item.callspec.params.get("redis_url", "standalone") != "standalone"
    ]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if item not in skipped]


@pytest.fixture
def make_config(database_url: str, redis_url: str, keys_dir: Path) -> Callable[..., AuthConfig]:
    def make(**overrides: object) -> AuthConfig:
        settings = {
            "app_env": "test",
            "database_url": database_url,
            "redis_url": redis_url,
            "signing_key_path": keys_dir / "signing.pem",
            "refresh_key_path": keys_dir / "refresh.key",
            "jwks_path": keys_dir / "jwks.json",
            **CHEAP_ARGON2,
            **overrides,
        }
        return AuthConfig(**settings)

    return make


@pytest.fixture
def make_app(make_config: Callable[..., AuthConfig], database_url: str) -> Callable[..., Flask]:
    migrate(database_url, HISTORY)
    created: list[Flask] = []

    def make(**overrides: object) -> Flask:
        app = create_app(make_config(**overrides))
        created.append(app)
        return app

    yield make
    for app in created:
        AuthContext.of(app).engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class AuthActions:
    """Sign up and log in through the HTTP interface, as a browser would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.counter = 0

    def signup(self, email: str | None = None, password: str = PASSWORD, name: str = "Ada Lovelace"):
        self.counter += 1
        email = email or f"user{self.counter}@example.com"
        response = self.client.post("/api/auth/signup", json={"email": email, "password": password, "name": name})
        assert response.status_code == 201, response.json
        return response.json["user"]

    def login(self, email: str, password: str = PASSWORD, **kwargs):
        return self.client.post("/api/auth/login", json={"email": email, "password": password}, **kwargs)

    def signup_and_login(self, **kwargs) -> tuple[dict, str]:
        """Return the user and its access token; the refresh cookie lands in the client's jar."""
        user = self.signup(**kwargs)
        response = self.login(user["email"])
        assert response.status_code == 200, response.json
        return user, response.json["access_token"]


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


def refresh_cookie(response) -> str | None:
    """The refresh_token value a response sets ('' when it clears the cookie)."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("refresh_token="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
