"""Admission control for password hashing, end to end: auth under gunicorn gthread, one slot per process.

The slot is held by a login whose stored hash names an argon2 cost that takes hours (the test plants
it in the database), so the slot stays taken until the process stops: no race is left to timing. The
test knows the slot is taken when the worker has a thread at nice 19, the hashing thread, which
exists from the first hash on (set-up runs its own logins in-process, so that one is the first).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from auth_service import create_app
from auth_service.config import AuthConfig
from auth_service.context import AuthContext
from auth_service.passwords import LOWEST_PRIORITY
from tests.auth_service.conftest import PASSWORD
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.servers

FLOOD = 8  # logins released together, twice gthread's 4 threads
THREADS = 4
WRONG = "wrong password, never right"
CHEAP = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}
QUEUE_WAIT_MS = 3000  # the one waiter's wait (queue 1); the flood is answered well inside it


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


# A well-formed argon2id hash whose cost (4e9 passes) takes hours to verify: the login that holds the slot.
ENDLESS_HASH = f"$argon2id$v=19$m=1024,t=4000000000,p=1${_b64(b's' * 16)}${_b64(b'h' * 32)}"


@dataclass
class Auth:
    process: ServiceProcess
    local: FlaskClient  # the same service in-process, on the same database and Redis, with roomy admission

    def worker_pid(self) -> int:
        assert self.process.process is not None
        master = self.process.process.pid
        [child] = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return int(child)

    def hashing_threads(self) -> int:
        """The worker's threads at the lowest priority: its hashing thread, once it has hashed."""
        pid, count = self.worker_pid(), 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except FileNotFoundError:  # a thread that just ended
                continue
            count += int(stat.rsplit(")", 1)[1].split()[16]) == LOWEST_PRIORITY
        return count

    def shed_events(self) -> list[dict[str, object]]:
        events = []
        for line in self.process.log().splitlines():
            if line.startswith("{") and '"password_hash_shed"' in line:
                events.append(json.loads(line))
        return events


def _config(tmp_path: Path, redis_url: str, keys_dir: Path, **overrides: object) -> dict[str, object]:
    return {
        "app_env": "test",
        "database_url": f"sqlite:///{tmp_path}/auth.db",
        "redis_url": redis_url,
        "signing_key_path": keys_dir / "signing.pem",
        "jwks_path": keys_dir / "jwks.json",
        "login_max_failures": 2,
        **CHEAP,
        **overrides,
    }


@pytest.fixture(params=[0, 1], ids=["queue 0", "queue 1"])
def auth(request: pytest.FixtureRequest, standalone_redis_url: str, keys_dir: Path, tmp_path: Path) -> Iterator[Auth]:
    settings = _config(
        tmp_path,
        standalone_redis_url,
        keys_dir,
        password_hash_concurrency=1,
        password_hash_queue=request.param,
        password_hash_queue_timeout_ms=QUEUE_WAIT_MS,
    )
    env = {name.upper(): str(value) for name, value in settings.items()}
    env["AUTH_DATABASE_URL"] = env.pop("DATABASE_URL")
    process = ServiceProcess("auth_service", env, tmp_path, workers=1, threads=THREADS).start()
    local_app = create_app(AuthConfig(**_config(tmp_path, standalone_redis_url, keys_dir, password_hash_queue=64)))
    try:
        yield Auth(process, local_app.test_client())
    finally:
        process.stop()  # ends the endless hash too (gunicorn kills the worker after its graceful timeout)
        AuthContext.of(local_app).engine.dispose()


def _signup_and_login(client: FlaskClient, email: str) -> str:
    assert client.post("/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "N"}).status_code == 201
    response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    return client.get_cookie("refresh_token", path="/api/auth").value


def _hold_the_slot(auth: Auth) -> socket.socket:
    """Send a login that verifies the endless hash and leave it running; return its open connection."""
    with auth.local.application.app_context():
        AuthContext.of().accounts.users.add(email="slow@example.com", name="Slow", password_hash=ENDLESS_HASH)
    body = json.dumps({"email": "slow@example.com", "password": WRONG}).encode()
    holder = socket.create_connection(("127.0.0.1", auth.process.port), timeout=10)
    holder.sendall(
        b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    deadline = time.monotonic() + 10  # a safety net only: the state below is what the test waits for
    while auth.hashing_threads() == 0:
        assert time.monotonic() < deadline, "the holder's hash never started"
        time.sleep(0.01)
    return holder


def _flood(base: str, emails: list[str]) -> list[requests.Response]:
    """Logins with wrong passwords released together by a barrier over already-open connections."""
    barrier = threading.Barrier(len(emails))

    def attempt(email: str) -> requests.Response:
        http = requests.Session()
        http.get(f"{base}/healthz", timeout=10)  # connect first, so the barrier releases requests
        barrier.wait(timeout=10)
        return http.post(f"{base}/api/auth/login", json={"email": email, "password": WRONG}, timeout=30)

    with ThreadPoolExecutor(max_workers=len(emails)) as pool:
        return list(pool.map(attempt, emails))  # a thread's exception fails the test here


def test_a_login_flood_past_the_bound_is_shed_and_refreshes_keep_working(auth: Auth):
    queue = auth.process.env["PASSWORD_HASH_QUEUE"]
    refresh_token = _signup_and_login(auth.local, "reader@example.com")
    _signup_and_login(auth.local, "victim@example.com")
    holder = _hold_the_slot(auth)
    try:
        # Half the flood guesses at an existing account, half at unknown ones.
        emails = ["victim@example.com"] * (FLOOD // 2) + [f"nobody{i}@example.com" for i in range(FLOOD // 2)]
        responses = _flood(auth.process.url, emails)

        # The slot is taken: with queue 0 every login is shed at once; with queue 1 one waits its
        # turn, which does not come, and is shed when its wait ends. None reaches argon2.
        assert [r.status_code for r in responses] == [503] * FLOOD
        for response in responses:
            assert response.headers["Content-Type"] == "application/problem+json"
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["code"] == "password_hashing_busy"
            assert "Set-Cookie" not in response.headers
        # A known and an unknown account are shed alike: the answer says nothing about accounts.
        assert len({(r.content, r.headers["Retry-After"]) for r in responses}) == 1

        # The flood holds no thread: a refresh is answered at once.
        refreshed = requests.post(
            f"{auth.process.url}/api/auth/refresh", headers={"Cookie": f"refresh_token={refresh_token}"}, timeout=10
        )
        assert refreshed.status_code == 200
        assert auth.hashing_threads() == 1  # and the holder still hashes: the flood was shed beside it
    finally:
        holder.close()

    # Each shed is one event with its reason; no password and no email in the log.
    reasons = Counter(event["reason"] for event in auth.shed_events())
    expected = {"queue_full": FLOOD} if queue == "0" else {"queue_full": FLOOD - 1, "wait_timed_out": 1}
    assert reasons == expected
    assert all(event["operation"] == "login" and event["level"] == "warning" for event in auth.shed_events())
    # And counted apart from failed logins, in the process's metrics.
    metrics = requests.get(f"{auth.process.url}/metrics", timeout=10).text
    assert f'auth_password_hash_shed_total{{operation="login"}} {float(FLOOD)}' in metrics
    assert 'auth_logins_total{outcome="invalid_credentials"}' not in metrics
    log = auth.process.log()
    assert WRONG not in log and PASSWORD not in log and "victim@" not in log and "nobody" not in log

    # The shed logins were never counted: past LOGIN_MAX_FAILURES (2) times four, the victim still
    # gets a wrong-password answer and then logs in (the throttle counts per account and address,
    # 127.0.0.1 for both the gunicorn and the in-process client).
    for password, status in ((WRONG, 401), (PASSWORD, 200)):
        answer = auth.local.post("/api/auth/login", json={"email": "victim@example.com", "password": password})
        assert answer.status_code == status


def test_a_shed_signup_is_a_503_and_creates_nothing(auth: Auth):
    holder = _hold_the_slot(auth)
    try:
        response = requests.post(
            f"{auth.process.url}/api/auth/signup",
            json={"email": "new@example.com", "password": PASSWORD, "name": "New"},
            timeout=30,
        )
    finally:
        holder.close()
    assert response.status_code == 503
    assert response.json()["code"] == "password_hashing_busy"
    assert int(response.headers["Retry-After"]) >= 1
    [event] = auth.shed_events()
    assert event["operation"] == "signup"
    # Nothing was created: the same signup succeeds (in-process, where a slot is free).
    signup = {"email": "new@example.com", "password": PASSWORD, "name": "New"}
    assert auth.local.post("/api/auth/signup", json=signup).status_code == 201
