"""Compose's `secrets` step, run for real in a temporary directory, and what its files start:
redis-server with the generated config, deploy/postgres/create-databases.sh on PostgreSQL, and the
services' configs reading the passwords through `<NAME>_PASSWORD_FILE`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from auth_service.config import AuthConfig
from deploy.secrets import generate_secrets
from profile_service.config import ProfileConfig
from scripts.run_stack import revocation_feed_acl
from tests.support.backends import POSTGRES_ADMIN_URL, RedisServer
from tests.support.processes import REPO

pytestmark = pytest.mark.servers  # runs redis-server, psql and the generator

GENERATOR = REPO / "deploy" / "secrets" / "generate_secrets.py"
CREATE_DATABASES = REPO / "deploy" / "postgres" / "create-databases.sh"
CONSUMERS = {
    "postgres": {"postgres-password", "auth-db-password", "profile-db-password", "board-db-password"},
    "redis": {"redis.conf"},
    "auth": {"db-password", "redis-password"},
    "profile": {"db-password", "revocation-feed-password"},
    "board": {"db-password", "revocation-feed-password"},
}
VARIABLES = tuple(generate_secrets.PASSWORDS)


def _generate(root: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    root.mkdir(exist_ok=True)  # in compose: the directory the volumes are mounted under
    return subprocess.run(
        [sys.executable, str(GENERATOR), str(root)],
        env={"PATH": os.environ["PATH"], **environment},
        capture_output=True,
        text=True,
        timeout=30,
    )


def _generated(root: Path, **environment: str) -> Path:
    finished = _generate(root, **environment)
    assert finished.returncode == 0, finished.stderr
    return root


def _contents(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): path.read_text() for path in sorted(root.rglob("*")) if path.is_file()}


def _password(root: Path, consumer: str, name: str) -> str:
    return (root / consumer / name).read_text().strip()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_run_generates_every_password_and_later_runs_keep_them(tmp_path: Path):
    first = _generate(tmp_path)
    assert first.returncode == 0, first.stderr
    generated = _contents(tmp_path)
    stored = [(tmp_path / "store" / variable.lower()).read_text().strip() for variable in VARIABLES]
    assert len(set(stored)) == len(VARIABLES) and all(len(password) >= 32 for password in stored)
    assert all(f"{variable} generated" in first.stdout for variable in VARIABLES)

    second = _generate(tmp_path)
    assert second.returncode == 0, second.stderr
    assert _contents(tmp_path) == generated
    assert "generated" not in second.stdout
    for password in stored:
        assert password not in first.stdout + first.stderr + second.stdout + second.stderr


def test_each_consumer_gets_only_the_passwords_it_uses(tmp_path: Path):
    root = _generated(tmp_path)
    assert {path.name for path in root.iterdir()} == {"store", *CONSUMERS}
    for consumer, files in CONSUMERS.items():
        assert {path.name for path in (root / consumer).iterdir()} == files, consumer
    for service in ("auth", "profile", "board"):
        assert _password(root, service, "db-password") == _password(root, "postgres", f"{service}-db-password")
    assert _password(root, "profile", "revocation-feed-password") == _password(
        root, "board", "revocation-feed-password"
    )
    # The resource services never hold auth's Redis password; auth holds no feed password.
    redis_password = _password(root, "auth", "redis-password")
    for consumer in ("profile", "board", "postgres"):
        assert redis_password not in "".join((root / consumer / name).read_text() for name in CONSUMERS[consumer])


def test_files_are_read_only_for_their_reader_alone(tmp_path: Path):
    root = _generated(tmp_path)
    assert _mode(root / "store") == 0o700
    for consumer, files in CONSUMERS.items():
        assert _mode(root / consumer) == 0o500, consumer
        for name in files:
            assert _mode(root / consumer / name) == 0o400, (consumer, name)
    if os.geteuid() == 0:  # only root can hand files to the containers' users (compose runs the step as root)
        for consumer, owner in {"postgres": 70, "redis": 999, "auth": 10001, "profile": 10001, "board": 10001}.items():
            for path in (root / consumer, *(root / consumer).iterdir()):
                assert (path.stat().st_uid, path.stat().st_gid) == (owner, 0), path


def test_loosened_modes_and_a_lost_copy_are_put_right_at_the_next_start(tmp_path: Path):
    root = _generated(tmp_path)
    before = _contents(root)
    (root / "auth").chmod(0o755)
    (root / "auth" / "db-password").chmod(0o644)
    (root / "profile" / "db-password").unlink()
    _generated(root)
    assert _mode(root / "auth") == 0o500 and _mode(root / "auth" / "db-password") == 0o400
    assert _contents(root) == before


def test_a_password_from_the_environment_replaces_the_stored_one_and_is_kept(tmp_path: Path):
    root = _generated(tmp_path)
    redis_password = _password(root, "auth", "redis-password")
    chosen = "my-own-Auth-db-pa$$word!"
    finished = _generate(root, AUTH_DB_PASSWORD=chosen, POSTGRES_PASSWORD="")  # empty: not set
    assert finished.returncode == 0, finished.stderr
    assert "AUTH_DB_PASSWORD set from the environment" in finished.stdout and chosen not in finished.stdout
    assert _password(root, "auth", "db-password") == _password(root, "postgres", "auth-db-password") == chosen
    assert _password(root, "auth", "redis-password") == redis_password  # the others as they were
    _generated(root)  # the variable removed later: the stored value stays, the database still matches
    assert _password(root, "auth", "db-password") == chosen


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("change-me-postgres", "placeholder"),  # what .env.example used to ship
        ("two words", "blanks, quotes"),
        ('quo"te', "blanks, quotes"),
        ("it's", "blanks, quotes"),
    ],
)
def test_an_unusable_password_from_the_environment_stops_the_step(tmp_path: Path, value: str, reason: str):
    finished = _generate(tmp_path, POSTGRES_PASSWORD=value)
    assert finished.returncode != 0
    assert "POSTGRES_PASSWORD" in finished.stderr and reason in finished.stderr
    assert value not in finished.stdout + finished.stderr


def test_the_feed_user_has_the_same_rule_as_under_make_run(tmp_path: Path):
    root = _generated(tmp_path)
    feed_password = _password(root, "profile", "revocation-feed-password")
    config = (root / "redis" / "redis.conf").read_text().splitlines()
    assert revocation_feed_acl(feed_password, AuthConfig().revocation_stream) in config
    assert f"requirepass {_password(root, 'auth', 'redis-password')}" in config


class RedisWithConfigFile(RedisServer):
    """redis-server started from a config file (the generated one), as compose's redis service is."""

    def __init__(self, directory: Path, config: Path, password: str) -> None:
        # The password comes from the file; knowing it lets the harness ping the server it started.
        super().__init__(directory, password=password)
        self.config = config

    def _arguments(self) -> list[str]:
        # The config file first, then only where to listen and keep files: the password is the file's.
        return [
            str(self.config),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.directory),
        ]


@pytest.fixture
def generated_redis(tmp_path: Path):
    root = _generated(tmp_path / "secrets")
    # redis-server runs as us here, not as the redis image's user the file was handed to.
    config = tmp_path / "redis.conf"
    shutil.copyfile(root / "redis" / "redis.conf", config)
    server = RedisWithConfigFile(tmp_path / "redis", config, _password(root, "auth", "redis-password")).start()
    yield root, server
    server.stop()


def test_the_generated_redis_config_needs_the_password_and_confines_the_feed_user(generated_redis, monkeypatch):
    root, server = generated_redis
    without_password = redis.Redis(port=server.port, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.exceptions.AuthenticationError):
        without_password.get("auth:anything")  # NOAUTH

    # Each service's config, as compose sets it: the URL without a password, the password's file.
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{server.port}/0")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(root / "auth" / "redis-password"))
    monkeypatch.setenv("REVOCATION_FEED_URL", f"redis://revocations@127.0.0.1:{server.port}/0")
    monkeypatch.setenv("REVOCATION_FEED_PASSWORD_FILE", str(root / "profile" / "revocation-feed-password"))
    auth = redis.Redis.from_url(AuthConfig.from_env().redis_url, socket_timeout=2)
    feed = redis.Redis.from_url(ProfileConfig.from_env().revocation_feed_url, socket_timeout=2)

    auth.set("auth:session:probe", "1")
    auth.xadd("auth:revocations", {"type": "session", "sid": "probe", "until": "0"})
    assert feed.xread({"auth:revocations": "0-0"}, count=1) and feed.xrange("auth:revocations")
    for forbidden in (
        lambda: feed.get("auth:session:probe"),
        lambda: feed.xadd("auth:revocations", {"type": "everyone", "before": "9999999999"}),
        lambda: feed.delete("auth:revocations"),
        lambda: feed.xtrim("auth:revocations", maxlen=0),
        lambda: feed.get("auth:revocations"),
        lambda: feed.publish("anything", "x"),
        lambda: feed.execute_command("KEYS", "*"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()


def _scram_matches(verifier: str, password: str) -> bool:
    """Whether PostgreSQL's SCRAM-SHA-256 verifier was made from `password` (RFC 5802 / 7677)."""
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = base64.b64decode(keys.split(":")[0])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return method == "SCRAM-SHA-256" and hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)


def test_create_databases_gives_each_role_the_generated_password(tmp_path: Path):
    root = _generated(tmp_path / "secrets")
    # The roles are the cluster's, shared with other test runs: unique names, dropped afterwards.
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    passwords_dir = tmp_path / "postgres"
    passwords_dir.mkdir()
    services = ("auth", "profile", "board")
    for service in services:
        shutil.copyfile(root / "postgres" / f"{service}-db-password", passwords_dir / f"{prefix}{service}-db-password")
    admin = urlsplit(POSTGRES_ADMIN_URL)
    environment = {
        "PATH": os.environ["PATH"],
        "SECRETS_DIR": str(passwords_dir),
        "POSTGRES_USER": admin.username or "postgres",
        "PGHOST": admin.hostname or "127.0.0.1",
        "PGPORT": str(admin.port or 5432),
        "PGDATABASE": admin.path.lstrip("/"),
        **({"PGPASSWORD": admin.password} if admin.password else {}),
    }
    try:
        finished = subprocess.run(
            ["sh", str(CREATE_DATABASES)], env=environment, capture_output=True, text=True, timeout=60
        )
        assert finished.returncode == 0, finished.stderr
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            for service in services:
                role = prefix + service
                verifier, owner, public_connect = connection.execute(
                    "SELECT rolpassword, pg_get_userbyid(datdba), has_database_privilege('public', datname, 'CONNECT')"
                    " FROM pg_authid JOIN pg_database ON datname = rolname WHERE rolname = %s",
                    (role,),
                ).fetchone()
                assert _scram_matches(verifier, _password(root, service, "db-password")), role
                assert not _scram_matches(verifier, _password(root, "postgres", "postgres-password"))
                assert owner == role and not public_connect
        for password in (_password(root, service, "db-password") for service in services):
            assert password not in finished.stdout + finished.stderr
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            for service in services:
                connection.execute(f'DROP DATABASE IF EXISTS "{prefix}{service}" WITH (FORCE)')
                connection.execute(f'DROP ROLE IF EXISTS "{prefix}{service}"')
