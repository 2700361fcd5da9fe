"""The test harness itself: a port taken between free_port() and the server's bind costs a retry, not a run."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.backends import RedisServer, listening_ports
from tests.support.processes import ServiceProcess
from tests.support.stack import GatewayProcess

pytestmark = pytest.mark.servers  # starts redis-server, nginx and gunicorn


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process holds, as if it took the one free_port() had just handed out."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield squatter.getsockname()[1]


def test_redis_server_moves_off_a_taken_port(tmp_path: Path, taken_port: int):
    server = RedisServer(tmp_path / "redis")
    server.port = taken_port
    server.start()
    try:
        assert server.port != taken_port
        assert server.port in listening_ports(server.process.pid)
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()


def test_gateway_moves_off_a_taken_port(tmp_path: Path, taken_port: int):
    gateway = GatewayProcess(tmp_path, {"auth": 9, "profile": 9, "board": 9})
    gateway.port = taken_port
    gateway.start()
    try:
        assert gateway.port != taken_port
        assert gateway.port in listening_ports(gateway.process.pid)
    finally:
        gateway.stop()


def test_service_binds_the_port_the_kernel_chose_and_keeps_it_on_restart(tmp_path: Path, keys_dir: Path):
    env = {
        "APP_ENV": "test",
        "JWKS_PATH": str(keys_dir / "jwks.json"),
        "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path}/profile.db",
    }
    service = ServiceProcess("profile_service", env, tmp_path, workers=1)
    assert service.port is None  # nothing reserved, so nothing to lose to another process
    service.start()
    try:
        port = service.port
        assert port in listening_ports(service.process.pid)
        service.stop()
        service.start()
        assert service.port == port
    finally:
        service.stop()
