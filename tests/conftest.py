"""Fixtures every test folder uses: private Redis, SQLite and PostgreSQL databases, keys, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from auth_service.keys import init_keys
from tests.support.backends import RedisServer, postgres_database
from tests.support.tokens import TokenFactory


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis URL whose database is empty at the start of each test."""
    redis_lib.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind the services support."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    init_keys(directory)
    return directory


@pytest.fixture(scope="session")
def tokens(keys_dir: Path) -> TokenFactory:
    return TokenFactory(keys_dir / "signing.pem")


# `make test-fast` runs what needs no server or process of its own: `pytest -m "not servers"`.
# A test needs servers when it lives in a folder that starts the stack, uses a fixture that starts
# one, runs on PostgreSQL, or its module says so with `pytestmark = pytest.mark.servers`.
_SERVER_FOLDERS = {"e2e", "web", "faults", "fuzz", "load"}
_SERVER_FIXTURES = {"redis_server", "postgres_engine", "auth_process", "stack"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (
            folder in _SERVER_FOLDERS
            or _SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
            or params.get("database_url") == "postgresql"
        ):
            item.add_marker(pytest.mark.servers)
