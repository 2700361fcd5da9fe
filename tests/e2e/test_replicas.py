"""Replicas of a service under `make run` (AUTH_REPLICAS, PROFILE_REPLICAS): each its own gunicorn,
all of them in the gateway's upstream, and the session rules hold across them."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from scripts.run_stack import REPLICA_PORT_STEP, main_nginx_config, render_gateway_config, upstream_servers
from tests.faults.conftest import signup_and_login
from tests.support.processes import REPO
from tests.support.racing import refresh_together
from tests.support.stack import Stack

RACERS = 20
# A non-atomic rotation forks a race only now and then through HTTP; rounds make it show.
ROUNDS = 5


def _upstream_blocks(config: str) -> dict[str, list[str]]:
    """The `server` lines of each upstream block of a rendered gateway config."""
    blocks = re.findall(r"^upstream (\w+) \{\n(.*?)^\}", config, flags=re.MULTILINE | re.DOTALL)
    return {name: re.findall(r"^\s*(server [^;]+;)", body, flags=re.MULTILINE) for name, body in blocks}


@pytest.mark.parametrize("replicas", [1, 3])
def test_each_replica_is_one_server_line_of_its_upstream(tmp_path: Path, replicas: int):
    auth = [9001 + REPLICA_PORT_STEP * n for n in range(replicas)]
    config = render_gateway_config(
        {
            "GATEWAY_PORT": "9080",
            "AUTH_UPSTREAM_SERVERS": upstream_servers(auth),
            "PROFILE_UPSTREAM_SERVERS": upstream_servers([9002, 9102]),
            "BOARD_UPSTREAM_SERVERS": upstream_servers([9003]),
            "WEB_ROOT": str(REPO / "gateway" / "web"),
            "UPSTREAM_BIND": "127.0.0.2",
            "GATEWAY_STATUS_LISTEN": "127.0.0.1:9079",
            "TOKEN_CLIENT_ROOT": str(REPO / "clients" / "js" / "src"),
        }
    )
    blocks = _upstream_blocks(config)
    addresses = {name: [line.split()[1] for line in lines] for name, lines in blocks.items()}
    assert addresses == {
        "auth_service": [f"127.0.0.1:{port}" for port in auth],
        "profile_service": ["127.0.0.1:9002", "127.0.0.1:9102"],
        "board_service": ["127.0.0.1:9003"],
    }
    # A replica that fails a connection is skipped for a while (the others take its share).
    assert all("max_fails=1" in line and "fail_timeout=" in line for lines in blocks.values() for line in lines)
    # nginx itself accepts what was rendered.
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway.conf").write_text(config)
    (tmp_path / "nginx.conf").write_text(main_nginx_config(tmp_path, tmp_path / "gateway.conf"))
    checked = subprocess.run(
        ["nginx", "-t", "-q", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory):
    # One worker per replica: two processes answer, and they are the two replicas.
    running = Stack(
        tmp_path_factory.mktemp("replicas"), AUTH_REPLICAS="2", PROFILE_REPLICAS="2", WEB_CONCURRENCY="1"
    ).start()
    yield running
    running.stop()


def _upstreams(stack: Stack, responses: list[requests.Response]) -> dict[str, str]:
    """The replica (host:port) nginx sent each response's request to, from its JSON access log."""
    wanted = {response.headers["X-Request-ID"] for response in responses}
    found: dict[str, str] = {}
    deadline = time.monotonic() + 5
    while set(found) != wanted and time.monotonic() < deadline:
        time.sleep(0.1)  # honcho relays the access lines a moment later
        for line in stack.log().splitlines():
            if "gateway.1" in line and '"service":"gateway"' in line:
                entry = json.loads(line[line.index("{") :])
                if entry["request_id"] in wanted:
                    found[entry["request_id"]] = entry["upstream"]
    assert set(found) == wanted, "every request is in the gateway's access log"
    return found


def _addresses(stack: Stack, service: str) -> set[str]:
    return {f"127.0.0.1:{port}" for port in stack.replica_ports(service)}


def test_the_stack_announces_every_replica(replicated: Stack):
    log = replicated.log()
    for name in ("auth-1", "auth-2", "profile-1", "profile-2", "board"):
        assert f"{name} is ready" in log
    ports = ", ".join(map(str, replicated.replica_ports("auth")))
    assert f"run: auth: 2 replicas (AUTH_REPLICAS) on ports {ports}" in log


def test_parallel_refreshes_spread_over_two_auth_replicas_keep_one_live_chain(replicated: Stack):
    base = replicated.url
    answered_by: set[str] = set()
    for round_ in range(ROUNDS):
        login = signup_and_login(base)

        responses = refresh_together(base, login.refresh_token, RACERS)

        assert [r.status_code for r in responses] == [200] * RACERS, f"round {round_}: somebody was logged out"
        # One rotated, the others got the grace answer: all hold the same successor.
        successors = {r.cookies["refresh_token"] for r in responses}
        assert len(successors) == 1, f"round {round_}: the session forked over the replicas"
        [successor] = successors
        assert successor != login.refresh_token
        answered_by |= set(_upstreams(replicated, responses).values())

        # The chain goes on from that successor: the session was not revoked, and it is the only one.
        following = requests.post(
            f"{base}/api/auth/refresh", headers={"Cookie": f"refresh_token={successor}"}, timeout=10
        )
        assert following.status_code == 200, following.text
        bearer = {"Authorization": f"Bearer {following.json()['access_token']}"}
        sessions = requests.get(f"{base}/api/auth/sessions", headers=bearer, timeout=10)
        assert len(sessions.json()["sessions"]) == 1
    assert answered_by == _addresses(replicated, "auth"), "both auth replicas took part in the races"


def test_every_profile_replica_verifies_the_same_token(replicated: Stack):
    login = signup_and_login(replicated.url)
    through_gateway = [
        requests.get(f"{replicated.url}/api/profiles/me", headers=login.bearer, timeout=10) for _ in range(6)
    ]
    assert [r.status_code for r in through_gateway] == [200] * 6
    assert set(_upstreams(replicated, through_gateway).values()) == _addresses(replicated, "profile")
    # And each replica, asked directly, verifies the token and finds the same profile.
    for port in replicated.replica_ports("profile"):
        direct = requests.get(f"http://127.0.0.1:{port}/api/profiles/me", headers=login.bearer, timeout=10)
        assert direct.status_code == 200, (port, direct.text)
        assert direct.json()["user_id"] == through_gateway[0].json()["user_id"]
