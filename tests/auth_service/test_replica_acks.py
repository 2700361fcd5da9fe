"""A session write is acknowledged only when a replica has it (REDIS_MIN_REPLICAS_ACK, Redis WAIT).

A primary and a replica of our own; freezing the replica (SIGSTOP) makes it stop acknowledging
while the primary still counts it as connected, as a lagging or partitioned replica would.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis as redis_lib

from shared.redis_client import ReplicasNotConfirmed, ReplicatedWrites, create_redis_client
from tests.auth_service.conftest import refresh_cookie
from tests.support.backends import RedisServer

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, RedisServer]]:
    primary = RedisServer(tmp_path_factory.mktemp("primary")).start()
    replica = RedisServer(tmp_path_factory.mktemp("replica")).start()
    redis_lib.Redis(port=primary.port).config_set("repl-diskless-sync-delay", 0)  # the first copy at once
    redis_lib.Redis(port=replica.port).replicaof("127.0.0.1", primary.port)
    deadline = time.monotonic() + 10
    # "online" once the first full copy arrived (Redis waits a few seconds to start a diskless one).
    while redis_lib.Redis(port=primary.port).info("replication").get("slave0", {}).get("state") != "online":
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)
    yield primary, replica
    replica.stop()
    primary.stop()


@pytest.fixture
def redis_url(replicated: tuple[RedisServer, RedisServer]) -> str:
    """The primary, emptied (the replica follows), for the auth app of the conftest."""
    primary, _ = replicated
    redis_lib.Redis(port=primary.port).flushall()
    return primary.url


@contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def test_a_write_returns_once_the_replica_has_it(replicated, redis_url):
    primary, replica = replicated
    writes = ReplicatedWrites(create_redis_client(primary.url), min_replicas=1, timeout_ms=2000)
    for n in range(50):
        writes.write(f"k{n}", lambda client, n=n: client.set(f"k{n}", "v"))
        assert redis_lib.Redis(port=replica.port).get(f"k{n}") == b"v"  # no sleep: WAIT already saw it there


def test_a_write_no_replica_confirms_in_time_is_not_acknowledged(replicated, redis_url):
    primary, replica = replicated
    writes = ReplicatedWrites(create_redis_client(primary.url), min_replicas=1, timeout_ms=100)
    with frozen(replica), pytest.raises(ReplicasNotConfirmed):
        writes.write("k", lambda client: client.set("k", "v"))


def test_login_and_refresh_answer_503_while_no_replica_confirms_and_the_session_survives(make_app, auth, replicated):
    _, replica = replicated
    app = make_app(redis_min_replicas_ack=1, redis_replica_ack_timeout_ms=100)
    client = app.test_client()
    auth.client = client
    user = auth.signup()
    with frozen(replica):
        refused = auth.login(user["email"])
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.json["code"] == "unavailable"
    assert refresh_cookie(refused) is None  # no token that a failover could take back

    logged_in = auth.login(user["email"])
    assert logged_in.status_code == 200
    first = refresh_cookie(logged_in)
    with frozen(replica):
        refused = client.post("/api/auth/refresh")
    assert (refused.status_code, refresh_cookie(refused)) == (503, None)
    # The client retries with the cookie it still has: the rotation that was not confirmed is handed
    # back (grace rule), not mistaken for reuse, and the person stays logged in.
    retried = client.post("/api/auth/refresh")
    assert retried.status_code == 200, retried.json
    successor = refresh_cookie(retried)
    assert successor and successor != first
    client.set_cookie("refresh_token", successor, path="/api/auth")
    assert client.post("/api/auth/refresh").status_code == 200


def test_logout_answers_503_until_a_replica_has_it(make_app, auth, replicated):
    _, replica = replicated
    app = make_app(redis_min_replicas_ack=1, redis_replica_ack_timeout_ms=100)
    auth.client = app.test_client()
    auth.signup_and_login()
    with frozen(replica):
        refused = auth.client.post("/api/auth/logout")
    assert refused.status_code == 503
    assert auth.client.post("/api/auth/logout").status_code == 204  # retried: announced, and done
    assert auth.client.post("/api/auth/refresh").status_code == 401


def test_the_default_on_a_standalone_url_is_not_to_wait(make_app, auth, replicated):
    _, replica = replicated
    auth.client = make_app().test_client()
    with frozen(replica):
        auth.signup_and_login()  # no WAIT: the frozen replica is not asked


def test_a_primary_that_lost_its_scripts_loads_them_and_the_write_goes_through(make_app, auth, replicated):
    primary, _ = replicated
    auth.client = make_app(redis_min_replicas_ack=1).test_client()
    auth.signup_and_login()
    primary.client().script_flush()  # as after a restart or on a just-promoted replica
    assert auth.client.post("/api/auth/refresh").status_code == 200
