"""The revocation feed under faults: while profile and board cannot reach Redis they keep serving
(and say they are stale); a revocation made while they were cut off is applied once they are back."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.faults.conftest import TcpProxy, auth_env, post_with_cookie, resource_env, signup_and_login
from tests.support.backends import RedisServer
from tests.support.workers import answers_from_every_worker

CALLS = {
    "profile_service": ("GET", "/api/profiles/me", None),
    "board_service": ("POST", "/api/boards", {"title": "feed", "content": "probe"}),
}


def call(service, login, method, path, body):
    return requests.request(method, f"{service.url}{path}", json=body, headers=login.bearer, timeout=10)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_cut_off_from_redis_they_serve_and_catch_up_on_reconnect(tmp_path: Path, keys_dir: Path, launch, start_service):
    redis_server = launch(RedisServer(tmp_path / "redis", appendonly=True))
    auth = start_service("auth_service", auth_env(tmp_path, keys_dir, redis_server.url), workers=1, threads=2)
    # The resource services reach Redis through a link the test can cut.
    link = launch(TcpProxy(("127.0.0.1", redis_server.port)))
    env = {**resource_env(tmp_path, keys_dir), "REVOCATION_FEED_URL": f"redis://{link.address}/0"}
    services = {package: start_service(package, env, workers=2) for package in CALLS}
    kept, revoked = signup_and_login(auth.url), signup_and_login(auth.url)
    for package, service in services.items():
        for login in (kept, revoked):
            assert call(service, login, *CALLS[package]).status_code in (200, 201)

    link.cut()
    for service in services.values():
        wait_for(
            lambda s=service: requests.get(f"{s.url}/readyz", timeout=10).json()["revocations"]["state"] == "stale",
            5,
            "readyz does not say the feed is stale",
        )
    # The revocation happens while they cannot hear of it; then Redis itself goes down.
    assert post_with_cookie(f"{auth.url}/api/auth/logout", revoked.refresh_token).status_code == 204
    redis_server.stop()

    for package, service in services.items():
        ready = requests.get(f"{service.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text  # availability first: still ready
        assert ready.json()["revocations"]["state"] == "stale"
        for _pid, answers in answers_from_every_worker(
            *CALLS[package][:1],
            f"{service.url}{CALLS[package][1]}",
            kept.bearer,
            service.log,
            json_body=CALLS[package][2],
        ).items():
            assert {answer.status_code for answer in answers} <= {200, 201}, package

    redis_server.start()  # from its append-only file, on the same port
    link.restore()
    for package, service in services.items():
        method, path, body = CALLS[package]

        def every_worker_refuses(s=service, m=method, p=path, b=body) -> bool:
            # Each worker reconnects on its own back-off: wait until all of them have caught up.
            answers = answers_from_every_worker(m, f"{s.url}{p}", revoked.bearer, s.log, json_body=b)
            return all(
                a.status_code == 401 and a.json().get("code") == "token_revoked" for w in answers.values() for a in w
            )

        wait_for(every_worker_refuses, 10, f"{package}: not every worker applied the revocation after reconnecting")
        assert call(service, kept, method, path, body).status_code in (200, 201)
        assert requests.get(f"{service.url}/readyz", timeout=10).json()["revocations"]["state"] == "live"
        # One line when the feed was lost and one when it came back, per worker; never one per retry.
        log = service.log()
        assert 1 <= log.count("revocation_feed_lost") <= 2 and 1 <= log.count("revocation_feed_back") <= 2, log
