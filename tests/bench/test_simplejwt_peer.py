"""The SimpleJWT peer of `make bench` row 7 still does what it is compared for: it rotates and blacklists
(the old refresh token is refused), and the wrk script rotates each connection's token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from bench.peers.simplejwt import USERNAME, peer_env
from tests.support.backends import postgres_database
from tests.support.processes import REPO, ServiceProcess

pytestmark = pytest.mark.servers

PASSWORD = "simplejwt peer password"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, dict[str, str]]]:
    """The peer as the bench serves it (gthread 2 × 4) on a database of its own, and its environment."""
    directory = tmp_path_factory.mktemp("simplejwt")
    with postgres_database() as database_url:
        env = peer_env(directory, database_url, PASSWORD)
        process = ServiceProcess(
            "bench.peers.simplejwt", env, directory, workers=2, threads=4, worker_class="gthread"
        ).start()
        yield process, env
        process.stop()


def _refresh(peer_url: str, refresh_token: str) -> requests.Response:
    return requests.post(f"{peer_url}/api/token/refresh/", json={"refresh": refresh_token}, timeout=10)


def test_refresh_rotates_and_the_spent_token_is_blacklisted(peer):
    process, _ = peer
    pair = requests.post(f"{process.url}/api/token/", json={"username": USERNAME, "password": PASSWORD}, timeout=10)
    assert pair.status_code == 200
    first = pair.json()["refresh"]

    rotated = _refresh(process.url, first)
    assert rotated.status_code == 200
    assert rotated.json()["access"]
    second = rotated.json()["refresh"]
    assert second != first

    # A second tab that sends the spent token a moment later is refused (no grace), and nothing more
    # happens: the successor still works (no reuse detection). Row 7's note says so.
    refused = _refresh(process.url, first)
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_not_valid"
    assert _refresh(process.url, second).status_code == 200


def test_the_wrk_script_rotates_each_connections_token(peer):
    process, env = peer
    minted = subprocess.run(
        [sys.executable, "-m", "bench.peers.simplejwt", "tokens", "2"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c2",
            "-d1s",
            "-s",
            str(REPO / "bench" / "wrk" / "simplejwt_refresh.lua"),
            f"{process.url}/api/token/refresh/",
        ],
        env={**os.environ, "REFRESH_TOKENS": ",".join(minted.stdout.split())},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    # A script that sent a spent token again would be refused (401) from its second request on.
    assert int(re.search(r"(\d+) requests in", out).group(1)) >= 4
    assert "Non-2xx" not in out
