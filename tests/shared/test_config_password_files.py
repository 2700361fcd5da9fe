"""`<NAME>_PASSWORD_FILE`: a URL setting's password read from a file (how compose hands out its secrets)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from redis.connection import parse_url
from sqlalchemy.engine import make_url

from auth_service.config import AuthConfig
from board_service.config import BoardConfig
from profile_service.config import ProfileConfig
from shared.config import COMPANION_FILE_SUFFIX, ConfigError, ServiceConfig, with_password

# Every character a URL or a config parser could trip over.
AWKWARD = "p@ss:w/rd %41?#[]'\" é"
# (config, URL variable, URL as written, companion variable, how the service reads the password back)
COMPANIONS = [
    (config, "REVOCATION_FEED_URL", "redis://revocations@redis:6379/0", "REVOCATION_FEED_PASSWORD_FILE", "redis")
    for config in (AuthConfig, ProfileConfig, BoardConfig)
] + [
    (AuthConfig, "AUTH_DATABASE_URL", "postgresql://auth@postgres:5432/auth", "AUTH_DATABASE_PASSWORD_FILE", "sql"),
    (AuthConfig, "REDIS_URL", "redis://redis:6379/0", "REDIS_PASSWORD_FILE", "redis"),
    (ProfileConfig, "PROFILE_DATABASE_URL", "postgresql://profile@db/profile", "PROFILE_DATABASE_PASSWORD_FILE", "sql"),
    (BoardConfig, "BOARD_DATABASE_URL", "postgresql+psycopg://board@db/board", "BOARD_DATABASE_PASSWORD_FILE", "sql"),
]
IDS = [f"{config.__name__}-{variable}" for config, _, _, variable, _ in COMPANIONS]
FIELD_OF = {"REVOCATION_FEED_URL": "revocation_feed_url", "REDIS_URL": "redis_url"}


def _url(config: ServiceConfig, url_variable: str) -> str:
    return getattr(config, FIELD_OF.get(url_variable, "database_url"))


def _password_as_the_client_reads_it(url: str, client: str) -> str:
    if client == "sql":
        return make_url(url).password
    return parse_url(url)["password"]  # redis-py's own URL parser


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(AWKWARD + "\n")
    return path


@pytest.mark.parametrize(("config", "url_variable", "url", "variable", "client"), COMPANIONS, ids=IDS)
def test_the_file_becomes_the_urls_password(monkeypatch, password_file, config, url_variable, url, variable, client):
    monkeypatch.setenv(url_variable, url)
    monkeypatch.setenv(variable, str(password_file))
    loaded = _url(config.from_env(), url_variable)
    assert _password_as_the_client_reads_it(loaded, client) == AWKWARD
    # Only the password was added: user, hosts, path and query as written.
    written, result = urlsplit(url), urlsplit(loaded)
    assert (result.scheme, result.username or None, result.hostname, result.port, result.path, result.query) == (
        written.scheme,
        written.username,
        written.hostname,
        written.port,
        written.path,
        written.query,
    )


@pytest.mark.parametrize(("config", "url_variable", "url", "variable", "client"), COMPANIONS, ids=IDS)
def test_without_the_file_the_url_is_used_as_written(monkeypatch, config, url_variable, url, variable, client):
    monkeypatch.setenv(url_variable, url)
    monkeypatch.setenv(variable, "")  # empty is the same as unset
    assert _url(config.from_env(), url_variable) == url


def test_every_server_url_setting_has_a_companion_and_every_companion_a_url():
    for config in (AuthConfig, ProfileConfig, BoardConfig):
        fields = set(config.model_fields)
        urls = {name for name in fields if name.endswith("_url")} - {"jwks_url"}  # jwks_url: plain https
        companions = {name for name in fields if name.endswith(COMPANION_FILE_SUFFIX)}
        assert {name.removesuffix("_url") + COMPANION_FILE_SUFFIX for name in urls} == companions, config
        for name in urls:
            variable = config.variable_name(name)
            assert config.variable_name(name.removesuffix("_url") + COMPANION_FILE_SUFFIX) == (
                variable.removesuffix("_URL") + "_PASSWORD_FILE"
            )


def _refusal(monkeypatch, config: type[ServiceConfig], **environment: str) -> str:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        config.from_env()
    return str(refused.value)


@pytest.mark.parametrize(("config", "url_variable", "url", "variable", "client"), COMPANIONS, ids=IDS)
def test_a_missing_file_stops_the_start_naming_the_variable(
    monkeypatch, tmp_path, config, url_variable, url, variable, client
):
    message = _refusal(monkeypatch, config, **{url_variable: url, variable: str(tmp_path / "absent")})
    assert variable in message and "No such file" in message


@pytest.mark.parametrize(
    ("make_file", "reason"),
    [
        (lambda path: path.mkdir(), "Is a directory"),  # unreadable as a file even for root
        (lambda path: path.write_text("\n"), "is empty"),
        (lambda path: path.write_bytes(b"\xff\xfe" + AWKWARD.encode()), "not UTF-8"),
    ],
    ids=["directory", "empty", "binary"],
)
def test_an_unusable_file_stops_the_start_naming_the_variable(monkeypatch, tmp_path, make_file, reason):
    path = tmp_path / "password"
    make_file(path)
    message = _refusal(monkeypatch, AuthConfig, REDIS_PASSWORD_FILE=str(path))
    assert "REDIS_PASSWORD_FILE" in message and reason in message
    assert "p@ss" not in message


@pytest.mark.parametrize(
    ("url_variable", "url", "problem"),
    [
        ("REDIS_URL", "redis://:inline@redis:6379/0", "already carries a password"),
        ("AUTH_DATABASE_URL", "postgresql://auth:inline@db/auth", "already carries a password"),
        ("AUTH_DATABASE_URL", "sqlite:///var/auth.db", "names no server"),
        ("REVOCATION_FEED_URL", "", "is empty"),
    ],
)
def test_a_url_that_cannot_take_the_password_is_refused_naming_both(
    monkeypatch, password_file, url_variable, url, problem
):
    variable = url_variable.removesuffix("_URL") + "_PASSWORD_FILE"
    message = _refusal(monkeypatch, AuthConfig, **{url_variable: url, variable: str(password_file)})
    assert url_variable in message and variable in message and problem in message
    assert "p@ss" not in message


def test_a_bad_url_is_reported_as_written_without_the_files_password(monkeypatch, password_file):
    message = _refusal(
        monkeypatch,
        AuthConfig,
        AUTH_DATABASE_URL="mysql://auth@db/auth",
        AUTH_DATABASE_PASSWORD_FILE=str(password_file),
    )
    assert "AUTH_DATABASE_URL" in message and "p@ss" not in message


def test_a_config_built_directly_takes_the_file_too(password_file):
    config = ProfileConfig(database_url="postgresql://profile@db/profile", database_password_file=password_file)
    assert make_url(config.database_url).password == AWKWARD


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://redis:6379/0", "redis://:pw@redis:6379/0"),
        (
            "rediss://feed@redis.example:6380/2?ssl_cert_reqs=required",
            "rediss://feed:pw@redis.example:6380/2?ssl_cert_reqs=required",
        ),
        (
            "redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/0",
            "redis+sentinel://:pw@s1:26379,s2:26379,s3:26379/mymaster/0",
        ),
        ("redis+cluster://n1:7000,n2:7001", "redis+cluster://:pw@n1:7000,n2:7001"),
        ("redis+sentinel://:@s1:26379/mymaster", "redis+sentinel://:pw@s1:26379/mymaster"),
        ("postgresql://auth@[::1]:5432/auth", "postgresql://auth:pw@[::1]:5432/auth"),
    ],
)
def test_the_password_goes_into_the_userinfo_of_every_url_form(url: str, expected: str):
    assert with_password(url, "pw") == expected


def test_the_password_is_percent_encoded_in_multi_host_urls():
    url = with_password("redis+cluster://n1:7000,n2:7001", AWKWARD)
    userinfo, _, hosts = urlsplit(url).netloc.rpartition("@")
    assert hosts == "n1:7000,n2:7001"
    assert unquote(userinfo.partition(":")[2]) == AWKWARD
