"""Fault injection with the real components: redis-server, PostgreSQL, gunicorn and nginx processes.

Every process a test starts goes through the `launch` fixture, which stops it at teardown (in
reverse order), so a test may stop, freeze or restart any component and still leave nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.auth_service.conftest import CHEAP_ARGON2, PASSWORD
from tests.support.backends import free_port
from tests.support.processes import ServiceProcess

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


@pytest.fixture
def launch() -> Iterator[Callable[[Any], Any]]:
    """`launch(component)` starts it (if it has not been) and stops it at teardown."""
    started: list[Any] = []

    def start(component: Any) -> Any:
        started.append(component)
        process = getattr(component, "process", None)
        if process is None:
            component.start()
        return component

    yield start
    for component in reversed(started):
        process = getattr(component, "process", None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # a frozen process cannot stop on its own
                os.kill(process.pid, signal.SIGCONT)
        component.stop()


def auth_env(tmp_path: Path, keys_dir: Path, redis_url: str, database_url: str | None = None) -> dict[str, str]:
    return {
        "APP_ENV": "test",
        "AUTH_DATABASE_URL": database_url or f"sqlite:///{tmp_path}/auth.db",
        "REDIS_URL": redis_url,
        "SIGNING_KEY_PATH": str(keys_dir / "signing.pem"),
        "JWKS_PATH": str(keys_dir / "jwks.json"),
        **{k.upper(): str(v) for k, v in CHEAP_ARGON2.items()},
    }


def resource_env(
    tmp_path: Path, keys_dir: Path, *, profile_db: str | None = None, board_db: str | None = None
) -> dict[str, str]:
    """Resource services with keys from the file only: they never need auth to be up."""
    return {
        "APP_ENV": "test",
        "JWKS_PATH": str(keys_dir / "jwks.json"),
        "PROFILE_DATABASE_URL": profile_db or f"sqlite:///{tmp_path}/profile.db",
        "BOARD_DATABASE_URL": board_db or f"sqlite:///{tmp_path}/board.db",
    }


@pytest.fixture
def start_service(launch, tmp_path: Path):
    def start(package: str, env: dict[str, str], **kwargs: Any) -> ServiceProcess:
        kwargs.setdefault("workers", 1)
        kwargs.setdefault("threads", 2)
        return launch(ServiceProcess(package, env, tmp_path, **kwargs))

    return start


# --- talking to the services -------------------------------------------------------------------


@dataclass
class Login:
    email: str
    access_token: str
    refresh_token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def refresh_cookie_of(response: requests.Response) -> str | None:
    """The refresh_token a response sets ('' when it clears it); read from the raw header, since
    requests' cookie jar would not send a Secure cookie over plain http anyway."""
    for header in response.raw.headers.getlist("Set-Cookie"):
        if header.startswith("refresh_token="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


def signup_and_login(base_url: str) -> Login:
    email = f"{secrets.token_hex(6)}@example.com"
    created = requests.post(
        f"{base_url}/api/auth/signup", timeout=10, json={"email": email, "password": PASSWORD, "name": "Faulty"}
    )
    assert created.status_code == 201, created.text
    logged_in = requests.post(f"{base_url}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
    assert logged_in.status_code == 200, logged_in.text
    refresh_token = refresh_cookie_of(logged_in)
    assert refresh_token
    return Login(email, logged_in.json()["access_token"], refresh_token)


def post_with_cookie(url: str, refresh_token: str, **kwargs: Any) -> requests.Response:
    return requests.post(url, headers={"Cookie": f"refresh_token={refresh_token}"}, timeout=10, **kwargs)


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status and code."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/problem+json", response.headers
    body = json.loads(response.text)
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status and body["code"] == code, body
    return body


# --- a TCP proxy whose link can be cut -------------------------------------------------------


class TcpProxy:
    """Forwards a local port to `target`; `cut()` refuses new connections and resets open ones,
    `restore()` listens again on the same port. A network fault between a service and its database."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._running.set()
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._thread.start()
        return self

    restore = start

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._connections.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()
        listener.close()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        self._running.clear()
        if self._thread:
            self._thread.join(5)  # the listener is closed: new connections are refused
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            self._close(sock)

    stop = cut
