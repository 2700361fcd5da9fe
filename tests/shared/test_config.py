"""Every environment variable: a bad value refuses to start, and the error names the variable."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from auth_service.config import AuthConfig
from board_service.config import BoardConfig
from profile_service.config import ProfileConfig
from shared.config import ConfigError, ServiceConfig
from tests.support.processes import REPO, ServiceProcess

# (variable, bad value) read by every service (ServiceConfig).
SHARED_VARIABLES = [
    ("APP_ENV", "staging"),
    ("LOG_LEVEL", "LOUD"),
    ("JWT_ISSUER", ""),
    ("JWT_ISSUER", "   "),
    ("JWT_AUDIENCE", ""),
    ("JWT_LEEWAY", "-1"),
    ("JWT_LEEWAY", "five"),
    ("JWKS_URL", "garbage"),
    ("JWKS_URL", "ftp://auth.example/jwks.json"),
    ("JWKS_REFETCH_COOLDOWN", "-1"),
    ("VERIFIED_TOKEN_CACHE_SIZE", "-1"),
    ("MAX_BODY_BYTES", "10"),
    ("REVOCATION_FEED_URL", "notaurl"),
    ("REVOCATION_FEED_URL", "redis+sentinel://127.0.0.1:26379"),
    ("DPOP_PUBLIC_ORIGIN", "localhost:8080"),
    ("DPOP_PROOF_MAX_AGE", "0"),
    ("DPOP_PROOF_MAX_AGE", "601"),
]
AUTH_VARIABLES = [
    ("AUTH_DATABASE_URL", "nonsense"),
    ("AUTH_DATABASE_URL", "mysql://db/users"),
    ("REDIS_URL", "notaurl"),
    ("REDIS_URL", "redis://127.0.0.1:99999/0"),
    ("REDIS_URL", "redis+sentinel://127.0.0.1:26379"),  # no master name
    ("REDIS_URL", "redis+sentinel://127.0.0.1:26379/mymaster/zero"),
    ("REDIS_URL", "redis+sentinel://127.0.0.1/mymaster"),  # no port
    ("REDIS_URL", "redis+cluster://127.0.0.1:7000,127.0.0.1/"),
    ("REDIS_URL", "redis+cluster://127.0.0.1:7000/3"),  # a cluster has database 0 only
    ("REDIS_URL", "redis+cluster://127.0.0.1:7000?timeout=3"),
    ("REDIS_URL", "rediss+cluster://127.0.0.1:7000"),
    ("REDIS_PREFIX", "auth:{x}:"),
    ("REDIS_MIN_REPLICAS_ACK", "-1"),
    ("REDIS_REPLICA_ACK_TIMEOUT_MS", "0"),
    ("ACCESS_TOKEN_TTL", "0"),
    ("ACCESS_TOKEN_TTL", "an hour"),
    ("REFRESH_TOKEN_TTL", "0"),
    ("REFRESH_REUSE_GRACE", "301"),
    ("GATEWAY_PORT", "99999"),
    ("GATEWAY_PORT", "0"),
    ("ALLOWED_ORIGINS", "app.example.com"),
    ("ALLOWED_ORIGINS", "https://app.example.com/path"),
    ("LOGIN_MAX_FAILURES", "0"),
    ("LOGIN_FAILURE_WINDOW", "0"),
    ("ARGON2_TIME_COST", "0"),
    ("ARGON2_MEMORY_COST", "4"),
    ("ARGON2_PARALLELISM", "0"),
    ("PASSWORD_HASH_CONCURRENCY", "0"),
    ("PASSWORD_HASH_CONCURRENCY", "many"),
    ("PASSWORD_HASH_QUEUE", "-1"),
    ("PASSWORD_HASH_QUEUE_TIMEOUT_MS", "-5"),
    ("PASSWORD_HASH_QUEUE_TIMEOUT_MS", "60001"),
    ("DPOP_NONCE", "maybe"),
    ("REQUIRE_BOUND_SESSIONS", "maybe"),
    ("ACCESS_TOKEN_BINDING", "mtls"),
]
CASES = (
    [(config, name, value) for config in (AuthConfig, ProfileConfig, BoardConfig) for name, value in SHARED_VARIABLES]
    + [(AuthConfig, name, value) for name, value in AUTH_VARIABLES]
    + [(ProfileConfig, "PROFILE_DATABASE_URL", "nonsense"), (BoardConfig, "BOARD_DATABASE_URL", "nonsense")]
)


@pytest.mark.parametrize(("config", "variable", "value"), CASES, ids=[f"{c.__name__}-{n}={v!r}" for c, n, v in CASES])
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch, config: type[ServiceConfig], variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as refused:
        config.from_env()
    assert variable in str(refused.value)


def test_the_defaults_are_valid(monkeypatch):
    for config in (AuthConfig, ProfileConfig, BoardConfig):
        assert config.from_env()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WEB_CONCURRENCY", "two"), ("WEB_CONCURRENCY", "0"), ("GUNICORN_THREADS", "four"), ("GUNICORN_THREADS", "-1")],
)
def test_gunicorn_settings_refuse_a_bad_value_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        runpy.run_path(str(REPO / "gunicorn.conf.py"))  # what gunicorn does with its config file


@pytest.mark.servers  # runs a process
def test_a_service_with_a_bad_value_exits_naming_it(tmp_path: Path, keys_dir: Path):
    """End to end under gunicorn: the JWKS_URL that used to start and answer 200 now stops the start."""
    env = {
        "APP_ENV": "test",
        "JWKS_PATH": str(keys_dir / "jwks.json"),
        "JWKS_URL": "garbage",
        "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path}/profile.db",
    }
    service = ServiceProcess("profile_service", env, tmp_path, workers=1)
    try:
        with pytest.raises(RuntimeError) as refused:
            service.start(timeout=30)
    finally:
        service.stop()  # a service that did start must not outlive the test
    assert "JWKS_URL" in str(refused.value)


def test_a_missing_signing_key_is_refused_naming_the_variable(tmp_path: Path):
    from auth_service import create_app

    with pytest.raises(ConfigError, match="SIGNING_KEY_PATH"):
        create_app(AuthConfig(signing_key_path=tmp_path / "absent.pem", database_url=f"sqlite:///{tmp_path}/a.db"))


def test_a_missing_refresh_key_is_refused_naming_the_variable(tmp_path: Path, keys_dir: Path):
    from auth_service import create_app

    settings = {"signing_key_path": keys_dir / "signing.pem", "database_url": f"sqlite:///{tmp_path}/a.db"}
    with pytest.raises(ConfigError, match="REFRESH_KEY_PATH"):
        create_app(AuthConfig(**settings, refresh_key_path=tmp_path / "absent.key"))
    with pytest.raises(ValidationError, match="REFRESH_KEY_PATH"):  # from_env turns it into a ConfigError
        AuthConfig(**settings, app_env="production", refresh_key_path=tmp_path / "absent.key")


def run_stack(var_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """`make run`'s start script with these settings, in its own var/; it should refuse to start."""
    env = {**os.environ, "VAR_DIR": str(var_dir), **settings}
    command = [sys.executable, str(REPO / "scripts" / "run_stack.py")]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.servers  # runs a process
@pytest.mark.parametrize("variable", ["GATEWAY_PORT", "AUTH_PORT", "PROFILE_PORT", "BOARD_PORT", "REDIS_PORT"])
def test_make_run_refuses_a_bad_port_naming_the_variable(tmp_path: Path, variable: str):
    finished = run_stack(tmp_path, **{variable: "99999"})
    assert finished.returncode != 0
    assert variable in finished.stderr


@pytest.mark.servers  # runs a process
@pytest.mark.parametrize(
    ("variable", "value"), [("AUTH_REPLICAS", "0"), ("PROFILE_REPLICAS", "17"), ("BOARD_REPLICAS", "two")]
)
def test_make_run_refuses_a_bad_replica_count_naming_the_variable(tmp_path: Path, variable: str, value: str):
    finished = run_stack(tmp_path, **{variable: value})
    assert finished.returncode != 0
    assert f"{variable} must be a whole number from 1 to 16, not {value!r}" in finished.stderr
    assert not (tmp_path / "Procfile").exists()  # stopped before anything was set up


def test_make_run_refuses_replicas_on_a_port_another_process_has():
    from scripts.run_stack import service_ports

    ports = {
        "GATEWAY": "8080",
        "AUTH": "8001",
        "PROFILE": "8101",
        "BOARD": "8003",
        "REDIS": "6390",
        "GATEWAY_STATUS": "8079",
        "GATEWAY_METRICS": "9113",
    }
    assert service_ports(ports, {"auth": 1, "profile": 1, "board": 1})["profile"] == 8101
    with pytest.raises(SystemExit, match=r"port 8003 is both BOARD_PORT \(board\) and GATEWAY_METRICS_PORT"):
        service_ports({**ports, "GATEWAY_METRICS": "8003"}, {"auth": 1, "profile": 1, "board": 1})
    with pytest.raises(SystemExit, match=r"port 8101 is both AUTH_PORT \+ 100 \(AUTH_REPLICAS\) \(auth-2\)"):
        service_ports(ports, {"auth": 2, "profile": 1, "board": 1})
    with pytest.raises(SystemExit, match="PROFILE_PORT"):
        service_ports(ports, {"auth": 2, "profile": 1, "board": 1})
    with pytest.raises(SystemExit, match=r"board-16 would listen on BOARD_PORT \+ 1500 .* past 65535"):
        service_ports({**ports, "BOARD": "64100"}, {"auth": 1, "profile": 1, "board": 16})


def test_the_defaults_are_the_ones_readme_documents(monkeypatch):
    for variable in ("WEB_CONCURRENCY", "GUNICORN_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    auth = AuthConfig()
    assert (auth.access_token_ttl, auth.refresh_token_ttl, auth.refresh_reuse_grace, auth.jwt_leeway) == (
        3600,
        1209600,
        10,
        5,
    )
    assert (auth.login_max_failures, auth.login_failure_window) == (10, 900)
    assert (auth.login_account_max_failures, auth.login_device_cookie_ttl, auth.max_sessions_per_user) == (
        100,
        31536000,
        50,
    )
    assert (auth.trusted_proxy_hops, auth.trusted_proxy_addresses) == (0, "")
    assert (auth.argon2_time_cost, auth.argon2_memory_cost, auth.argon2_parallelism) == (3, 65536, 4)
    assert auth.gateway_port == 8080 and auth.jwks_refetch_cooldown == 30
    assert auth.origins == {"http://localhost:8080", "http://127.0.0.1:8080"}
    assert (auth.dpop_proof_max_age, auth.dpop_nonce, auth.require_bound_sessions) == (60, False, False)
    assert (auth.access_token_binding, auth.public_origin) == ("bearer", "http://localhost:8080")
    assert ProfileConfig(jwt_issuer="https://id.example.com/auth").public_origin == "https://id.example.com"
    gunicorn = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    assert (gunicorn["workers"], gunicorn["threads"]) == (2, 4)
    assert gunicorn["worker_class"] == "shared.gunicorn_errors.ThreadProblemWorker"  # gthread, problem errors
