"""Fixtures every test folder uses: private Redis (alone, Cluster, Sentinel), SQLite and PostgreSQL databases,
keys, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from auth_service.keys import init_keys
from tests.support.backends import RedisClusterServers, RedisSentinelServers, RedisServer, postgres_database
from tests.support.tokens import TokenFactory


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def standalone_redis_url(redis_server: RedisServer) -> str:
    """A Redis URL whose database is empty at the start of each test."""
    redis_lib.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture
def redis_url(standalone_redis_url: str) -> str:
    """The Redis of a test: standalone, unless a folder's conftest runs its tests on every topology."""
    return standalone_redis_url


# Cluster and Sentinel run with a password, as they would in production, so every client must pass it on.
TOPOLOGY_PASSWORD = "topology-test-password"
# The shared set-ups nobody kills wait 3 s before calling a server down, so a busy machine does not set
# off a failover in the middle of a test; the disposable ones keep the 1 s defaults, to fail over fast.
SHARED_TOPOLOGY_DOWN_AFTER_MS = 3000


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A six-node Redis Cluster shared by the session: tests that kill nodes take disposable_redis_cluster."""
    directory = tmp_path_factory.mktemp("redis-cluster")
    with RedisClusterServers(
        directory, password=TOPOLOGY_PASSWORD, node_timeout_ms=SHARED_TOPOLOGY_DOWN_AFTER_MS
    ) as cluster:
        yield cluster


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    """A `redis+cluster://` URL whose primaries are empty at the start of each test."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def disposable_redis_cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    """A Redis Cluster of this test's own, to kill nodes of."""
    with RedisClusterServers(tmp_path / "redis-cluster", password=TOPOLOGY_PASSWORD) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelServers]:
    """Primary, replica and three sentinels shared by the session: tests that kill servers take
    disposable_redis_sentinel."""
    directory = tmp_path_factory.mktemp("redis-sentinel")
    with RedisSentinelServers(
        directory, password=TOPOLOGY_PASSWORD, down_after_ms=SHARED_TOPOLOGY_DOWN_AFTER_MS
    ) as sentinel:
        yield sentinel


@pytest.fixture
def redis_sentinel_url(redis_sentinel: RedisSentinelServers) -> str:
    """A `redis+sentinel://` URL whose primary is empty at the start of each test."""
    redis_sentinel.flush()
    return redis_sentinel.url


@pytest.fixture
def disposable_redis_sentinel(tmp_path: Path) -> Iterator[RedisSentinelServers]:
    """Primary, replica and three sentinels of this test's own, to kill servers of."""
    with RedisSentinelServers(tmp_path / "redis-sentinel", password=TOPOLOGY_PASSWORD) as sentinel:
        yield sentinel


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
_SERVER_FIXTURES = {
    "redis_server",
    "redis_cluster",
    "disposable_redis_cluster",
    "redis_sentinel",
    "disposable_redis_sentinel",
    "postgres_engine",
    "auth_process",
    "stack",
}


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
