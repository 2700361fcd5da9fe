"""Under `make run` each process holds only its own settings, and var/ is readable by its owner only."""

from __future__ import annotations

import os
import socket
import stat
import uuid
from pathlib import Path

import pytest
import redis
import requests

from scripts.run_stack import BASIC_VARIABLES, GUNICORN_VARIABLES, make_owner_only, redis_password
from shared.config import ServiceConfig
from tests.support.stack import Stack

PASSWORD = "correct horse battery"
# Auth's secrets: where the private key is, the users database, and the Redis with its password.
AUTH_ONLY = ("SIGNING_KEY_PATH", "AUTH_DATABASE_URL", "REDIS_URL")
SHARED_SETTINGS = {name.upper() for name in ServiceConfig.model_fields}


def _parents() -> dict[int, int]:
    parents = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name in parentheses may hold spaces; the parent pid is the 2nd field after it.
            parents[int(stat_file.parent.name)] = int(stat_file.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):  # exited while we looked
            continue
    return parents


def _descendants(root: int) -> list[int]:
    """Every process below `root`, found through the parent pids in /proc/<pid>/stat."""
    parents = _parents()
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found += frontier
    return found


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.split("=", 1) for entry in raw.decode().split("\0") if "=" in entry)


def _processes(stack: Stack) -> dict[str, list[int]]:
    """The stack's long-running processes (masters and workers) by component, from its process tree."""
    found: dict[str, list[int]] = {"auth": [], "profile": [], "board": [], "gateway": [], "redis": []}
    for pid in _descendants(stack.process.pid):
        command = Path(f"/proc/{pid}/comm").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        if command == "nginx":
            found["gateway"].append(pid)
        elif command == "redis-server":
            found["redis"].append(pid)
        elif command == "gunicorn":
            service = next(name for name in ("auth", "profile", "board") if f"{name}_service:create_app()" in cmdline)
            found[service].append(pid)
    assert all(len(pids) >= 1 for pids in found.values()), found
    return found


def _basic(name: str) -> bool:
    return name in BASIC_VARIABLES or name.startswith("LC_")


def _password(stack: Stack) -> str:
    return (stack.var_dir / "redis" / "password").read_text().strip()


def _traffic(stack: Stack) -> None:
    """Write to every database: an account, a session, a profile read and a post."""
    credentials = {"email": f"lp-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
    assert requests.post(f"{stack.url}/api/auth/signup", json={**credentials, "name": "Lp"}).status_code == 201
    login = requests.post(f"{stack.url}/api/auth/login", json=credentials)
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert requests.get(f"{stack.url}/api/profiles/me", headers=bearer).status_code == 200
    post = requests.post(f"{stack.url}/api/boards", headers=bearer, json={"title": "modes", "content": "private"})
    assert post.status_code == 201


def _feed_password(stack: Stack) -> str:
    return (stack.var_dir / "redis" / "feed-password").read_text().strip()


def test_only_auth_holds_the_key_path_its_database_and_redis(stack: Stack):
    processes, password = _processes(stack), _password(stack)
    for component in ("profile", "board", "gateway", "redis"):
        for pid in processes[component]:
            environment = _environ(pid)
            assert not set(AUTH_ONLY) & set(environment), (component, sorted(environment))
            assert not any(password in value for value in environment.values()), component
    # The resource services hold the feed's read-only user instead, and nothing else of Redis.
    feed_url = f"redis://revocations:{_feed_password(stack)}@127.0.0.1:{stack.ports['redis']}/0"
    for component in ("profile", "board"):
        for pid in processes[component]:
            assert _environ(pid)["REVOCATION_FEED_URL"] == feed_url, component
    for pid in processes["gateway"] + processes["redis"] + processes["auth"]:
        assert "REVOCATION_FEED_URL" not in _environ(pid)
    for pid in processes["auth"]:
        environment = _environ(pid)
        assert environment["SIGNING_KEY_PATH"] == str(stack.var_dir / "keys" / "signing.pem")
        assert environment["AUTH_DATABASE_URL"] == f"sqlite:///{stack.var_dir}/auth.db"
        assert environment["REDIS_URL"] == f"redis://:{password}@127.0.0.1:{stack.ports['redis']}/0"


def test_each_service_holds_only_the_settings_its_config_reads(stack: Stack):
    processes = _processes(stack)
    own = {"profile": {"PROFILE_DATABASE_URL"}, "board": {"BOARD_DATABASE_URL"}}
    for service, settings in own.items():
        for pid in processes[service]:
            environment = _environ(pid)
            readable = SHARED_SETTINGS | settings | set(GUNICORN_VARIABLES)
            strays = {name for name in environment if not _basic(name) and name not in readable}
            assert not strays, (service, strays)
            assert settings <= set(environment)
            # The fixture's overrides reach the services that read them, and only those.
            assert environment["JWT_LEEWAY"] == "0"
            assert "ACCESS_TOKEN_TTL" not in environment and "ARGON2_TIME_COST" not in environment
    for pid in processes["auth"]:
        environment = _environ(pid)
        assert environment["ACCESS_TOKEN_TTL"] == "2" and environment["JWT_LEEWAY"] == "0"
        assert environment["ARGON2_TIME_COST"] == "1"
        assert not {"PROFILE_DATABASE_URL", "BOARD_DATABASE_URL", "VAR_DIR", "AUTH_PORT"} & set(environment)
    for component in ("gateway", "redis"):
        for pid in processes[component]:
            strays = {name for name in _environ(pid) if not _basic(name)}
            assert not strays, (component, strays)
    # Only honcho keeps the whole environment it was started with (here VAR_DIR): no `sh -c` is left
    # behind holding it above each process.
    for pid in _descendants(stack.process.pid):
        if Path(f"/proc/{pid}/comm").read_text().strip() != "honcho":
            assert "VAR_DIR" not in _environ(pid), Path(f"/proc/{pid}/cmdline").read_bytes()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_databases_redis_files_keys_and_env_files_are_owner_only(stack: Stack):
    _traffic(stack)
    var = stack.var_dir
    databases = {path.name: _mode(path) for path in var.glob("*.db*")}
    assert {f"{name}.db{suffix}" for name in ("auth", "profile", "board") for suffix in ("", "-wal", "-shm")} <= set(
        databases
    )
    assert set(databases.values()) == {0o600}, databases
    redis_files = list((var / "redis").rglob("*"))
    assert any(path.name.endswith(".aof") for path in redis_files)
    for path in [var / "redis", var / "keys", var / "env", *redis_files]:
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    for path in [
        var / "keys" / "signing.pem",
        var / "redis" / "password",
        var / "Procfile",
        *(var / "env").glob("*.json"),
    ]:
        assert _mode(path) == 0o600, path


# What runs before umask 077 left readable by others.
OLDER_PRIVATE_FILES = (
    "auth.db",
    "auth.db-wal",
    "Procfile",
    "keys/signing.pem",
    "keys/jwks.json",
    "redis/password",
    "redis/appendonlydir/appendonly.aof.1.incr.aof",
)


def test_owner_only_modes_are_restored_on_what_older_runs_left(tmp_path: Path):
    old_umask = os.umask(0o022)  # what the runs before this change created files with
    try:
        for name in (*OLDER_PRIVATE_FILES, "notes.txt"):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("old")
    finally:
        os.umask(old_umask)
    make_owner_only(tmp_path)
    for name in OLDER_PRIVATE_FILES:
        assert _mode(tmp_path / name) == 0o600, name
    for name in ("keys", "redis", "redis/appendonlydir"):
        assert _mode(tmp_path / name) == 0o700, name
    assert _mode(tmp_path / "notes.txt") == 0o644  # not ours: left alone


def test_the_stacks_redis_refuses_clients_without_the_password(stack: Stack):
    # A bare PING on a raw connection: exactly what any local process could try.
    with socket.create_connection(("127.0.0.1", stack.ports["redis"]), timeout=2) as connection:
        connection.sendall(b"PING\r\n")
        assert connection.recv(100).startswith(b"-NOAUTH")
    address = f"127.0.0.1:{stack.ports['redis']}/0"
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(f"redis://:not-the-password@{address}", socket_timeout=2).ping()
    assert redis.Redis.from_url(f"redis://:{_password(stack)}@{address}", socket_timeout=2).ping()


def test_the_feed_user_may_read_the_revocation_stream_and_nothing_else(stack: Stack):
    address = f"127.0.0.1:{stack.ports['redis']}/0"
    admin = redis.Redis.from_url(f"redis://:{_password(stack)}@{address}", socket_timeout=2)
    _traffic(stack)  # at least one session exists
    admin.xadd("auth:revocations", {"type": "session", "sid": "probe", "until": "0"})
    session_key = next(admin.scan_iter(match="auth:u:{*}"))  # a user's sessions
    feed = redis.Redis.from_url(f"redis://revocations:{_feed_password(stack)}@{address}", socket_timeout=2)
    assert feed.ping() and feed.xrange("auth:revocations")
    assert feed.xread({"auth:revocations": "0-0"}, count=1)
    for forbidden in (
        lambda: feed.get(session_key),
        lambda: feed.get("auth:anything"),
        lambda: feed.xadd("auth:revocations", {"type": "everyone", "before": "9999999999"}),
        lambda: feed.delete("auth:revocations"),
        lambda: feed.xtrim("auth:revocations", maxlen=0),
        lambda: feed.xrange(session_key),
        lambda: feed.publish("anything", "x"),
        lambda: feed.execute_command("KEYS", "*"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()


def test_the_redis_password_is_kept_across_runs_and_never_shown(stack: Stack):
    for password, name in ((_password(stack), "password"), (_feed_password(stack), "feed-password")):
        assert len(password) >= 32
        assert _mode(stack.var_dir / "redis" / name) == 0o600
        assert redis_password(stack.var_dir / "redis", name) == password  # a later run reuses it
        assert password not in stack.log()
        assert password not in (stack.var_dir / "Procfile").read_text()
        for pid in _descendants(stack.process.pid):
            assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()  # readable by every user
