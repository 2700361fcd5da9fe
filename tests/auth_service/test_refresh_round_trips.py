"""A refresh costs Redis exactly one round trip: the rotation script (EVALSHA), nothing else per
request: no throttle, no revocation publisher, no check before or after it. Counted on a private
Redis with MONITOR, which shows every command a client sends (and, apart, those a script runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.auth_service.conftest import refresh_cookie
from tests.support.backends import RedisServer

pytestmark = pytest.mark.servers

MARKER = "round-trips-counted"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'auth.db'}"  # a refresh reads no database; one kind is enough


@pytest.fixture
def redis_url(standalone_redis_url: str) -> str:
    return standalone_redis_url  # MONITOR sees one server; a round trip is a round trip on any topology


def _commands_sent(server: RedisServer, action) -> list[str]:
    """The commands clients sent (not those a script ran) while `action` ran, in order."""
    marker = server.client()
    marker.ping()  # connected (and its handshake sent) before the count starts
    with server.client().monitor() as monitor:
        action()
        marker.echo(MARKER)  # after it, nothing of the action can still arrive
        sent = []
        while True:
            entry = monitor.next_command()
            if entry["command"] == f"ECHO {MARKER}":
                return sent
            if entry["client_type"] != "lua":
                sent.append(entry["command"])


def test_one_refresh_is_one_script_call(auth, client, redis_server: RedisServer):
    user = auth.signup()
    assert auth.login(user["email"]).status_code == 200
    assert client.post("/api/auth/refresh").status_code == 200  # the connection pool is warm, the script loaded

    answers = []
    sent = _commands_sent(redis_server, lambda: answers.append(client.post("/api/auth/refresh")))

    assert answers[0].status_code == 200 and refresh_cookie(answers[0])
    assert [command.split()[0].upper() for command in sent] == ["EVALSHA"], sent


def test_the_grace_answer_is_one_script_call_too(auth, client, redis_server: RedisServer):
    # A racing tab presents the token just replaced: answered from the same single script call.
    user = auth.signup()
    first = refresh_cookie(auth.login(user["email"]))
    assert client.post("/api/auth/refresh").status_code == 200

    answers = []

    def present_the_previous_token() -> None:
        client.set_cookie("refresh_token", first, path="/api/auth")
        answers.append(client.post("/api/auth/refresh"))

    sent = _commands_sent(redis_server, present_the_previous_token)

    assert answers[0].status_code == 200
    assert [command.split()[0].upper() for command in sent] == ["EVALSHA"], sent


def test_the_count_sees_a_second_call(redis_server: RedisServer):
    # The counter itself: two commands sent are two, and what a script runs inside is not counted.
    client = redis.Redis.from_url(redis_server.url)
    script = client.register_script("redis.call('SET', KEYS[1], 'x'); return redis.call('GET', KEYS[1])")
    script(keys=["counted"])

    sent = _commands_sent(redis_server, lambda: (script(keys=["counted"]), client.ping()))

    assert [command.split()[0].upper() for command in sent] == ["EVALSHA", "PING"]
