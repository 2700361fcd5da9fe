"""Private, disposable backends for tests: a redis-server on a free port and fresh PostgreSQL databases."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# What redis-server, gunicorn and nginx print when the port they were given was taken meanwhile.
ADDRESS_IN_USE = ("Address already in use", "Connection in use")
# free_port() releases the port before the server binds it, so another process may take it first;
# a server that finds its port taken is started again on a new one, this many times in all.
START_ATTEMPTS = 5


def free_port() -> int:
    """A port that was free a moment ago: callers retry when it is taken by the time they bind."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on, read from /proc (Linux), so a server answering
    on a port is known to be ours and not whoever took the port first."""
    listening: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in rows.readlines()[1:]:
                fields = row.split()
                if fields[3] == "0A":  # TCP_LISTEN
                    listening[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    ports = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:[") and target[8:-1] in listening:
            ports.add(listening[target[8:-1]])
    return ports


class PortTaken(RuntimeError):
    """Another process bound the port between free_port() and the server's own bind."""


class MovesOffATakenPort:
    """`start()` for a server on one port: the first start moves to another port when this one was
    taken meanwhile; a restart keeps its address, which tests rely on."""

    port: int
    process: subprocess.Popen | None

    def _start_on_port(self):
        raise NotImplementedError

    def start(self):
        first_start = self.process is None
        for _ in range(START_ATTEMPTS):
            try:
                return self._start_on_port()
            except PortTaken:
                if not first_start:
                    raise
                self.port = free_port()
        raise RuntimeError(f"{type(self).__name__} found {START_ATTEMPTS} ports taken")


class RedisServer(MovesOffATakenPort):
    """A redis-server process of our own, so no test depends on what others left in a shared one."""

    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _start_on_port(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.directory.mkdir(parents=True, exist_ok=True)
        log_path = self.directory / f"redis-{self.port}.log"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "yes" if self.appendonly else "no",
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                output = log_path.read_text(errors="replace")
                if any(marker in output for marker in ADDRESS_IN_USE):
                    raise PortTaken(self.port)
                raise RuntimeError(f"redis-server exited:\n{output}")
            if self.port in listening_ports(self.process.pid):
                try:
                    client.ping()
                    return self
                except redis.exceptions.ConnectionError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _admin_connection() -> psycopg.Connection:
    return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"silent_auth_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
