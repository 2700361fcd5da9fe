"""Typed configuration read from the environment once, failing fast with a clear message."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse comma-separated addresses or CIDR blocks; raise ValueError naming a bad one."""
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR block") from None
    return tuple(networks)


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


def _is_database_url(value: str) -> str:
    """Refuse anything but a SQLite or PostgreSQL URL, so a typo stops the start, not the first query."""
    # Imported here: reading a config (e.g. for `python -m auth_service keys`) loads no database stack.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(value).get_backend_name()
    except ArgumentError:
        # The value is not repeated: a database URL may carry a password.
        raise ValueError("not a database URL like sqlite:///var/app.db or postgresql://...") from None
    if backend not in {"sqlite", "postgresql", "postgres"}:
        raise ValueError(f"{backend!r} databases are not supported: use sqlite or postgresql")
    return value


def is_http_url(value: str) -> str:
    """Refuse anything but an absolute http(s) URL with a host."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _is_redis_url(value: str) -> str:
    """Refuse anything but a Redis URL of a topology the services support (shared/redis_client.py)."""
    from shared.redis_client import parse_redis_url  # imported here: reading a config loads no Redis client

    parse_redis_url(value)
    return value


DatabaseUrl = Annotated[str, AfterValidator(_is_database_url)]
RedisUrl = Annotated[str, AfterValidator(_is_redis_url)]


def _empty_is_unset(value: Any) -> Any:
    return None if value == "" else value


# The companion of a URL setting `<NAME>_URL`: a file whose content becomes that URL's password
# (see ServiceConfig._passwords_from_files). An empty variable is the same as none.
PasswordFile = Annotated[Path | None, BeforeValidator(_empty_is_unset)]
COMPANION_FILE_SUFFIX = "_password_file"


def with_password(url: str, password: str) -> str:
    """Return `url` with `password` in its userinfo, the user name and everything else as written.

    The netloc is edited as text, so multi-host forms survive (redis+sentinel://h1:26379,h2:26379/m).
    """
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError("names no server to log in to")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, written_password = userinfo.partition(":")
    if written_password:
        raise ValueError("already carries a password")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{hosts}"))


def read_password_file(path: Path, variable: str) -> str:
    """Read a password file, trailing newlines dropped; an error names `variable`, never the content."""
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"{variable}: cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{variable}: {path} is not UTF-8 text") from None
    if not password:
        raise ValueError(f"{variable}: {path} is empty")
    return password


class ServiceConfig(BaseSettings):
    """Settings every service shares; each service subclasses it with its own fields.

    Field names are the environment variable names (case-insensitive). Tests build configs
    directly, e.g. `AuthConfig(database_url=...)`, instead of changing the environment.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    app_env: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    jwt_issuer: str = Field("http://localhost:8080", min_length=1)
    jwt_audience: str = Field("silent-auth", min_length=1)
    jwt_leeway: int = Field(5, ge=0, le=300)
    # Where resource services find the public keys: the file works while auth is down, the URL
    # brings keys introduced later.
    jwks_path: Path | None = Path("var/keys/jwks.json")
    jwks_url: Annotated[str, AfterValidator(is_http_url)] | None = None
    jwks_refetch_cooldown: float = Field(30.0, ge=0)
    # Every this many seconds the keys are re-read, so a withdrawn key is dropped without a restart.
    jwks_refresh_interval: float = Field(60.0, gt=0)
    # The Redis holding auth's revocation feed, read-only (a user allowed the stream alone); empty:
    # no feed, so revocations reach this service only when the tokens expire.
    revocation_feed_url: Annotated[str, AfterValidator(lambda url: url and _is_redis_url(url))] = ""
    revocation_feed_password_file: PasswordFile = None
    revocation_feed_stream: str = "auth:revocations"
    # Verified tokens remembered until they expire (0 turns the cache off, e.g. to measure it).
    verified_token_cache_size: int = Field(10_000, ge=0)
    # How many proxies in front of the service append to X-Forwarded-For (1 behind the gateway),
    # believed only on connections from these addresses (comma-separated IPs or CIDR blocks).
    trusted_proxy_hops: int = Field(0, ge=0, le=5)
    trusted_proxy_addresses: str = ""
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # Prometheus metrics at /metrics (shared/metrics.py); off only to measure what they cost.
    metrics_enabled: bool = True
    # DPoP proofs (RFC 9449, shared/dpop.py): `htu` must name this origin plus the request's path
    # (empty: the origin of JWT_ISSUER, the gateway's), never the Host header; `iat` may be this many
    # seconds either way from now, plus JWT_LEEWAY.
    dpop_public_origin: Annotated[str, AfterValidator(lambda url: url and is_http_url(url))] = ""
    dpop_proof_max_age: int = Field(60, ge=1, le=600)

    @field_validator("trusted_proxy_addresses")
    @classmethod
    def _addresses_are_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _hops_need_trusted_addresses(self) -> Self:
        if self.trusted_proxy_hops and not self.trusted_proxies:
            raise ValueError(
                "TRUSTED_PROXY_HOPS needs TRUSTED_PROXY_ADDRESSES: the proxies whose X-Forwarded-For may be believed"
            )
        return self

    @model_validator(mode="after")
    def _passwords_from_files(self) -> Self:
        """Put each `<NAME>_PASSWORD_FILE`'s content into `<NAME>_URL` as its password.

        After the fields are validated, so a bad URL is reported as written, without the password.
        """
        for file_field in (name for name in type(self).model_fields if name.endswith(COMPANION_FILE_SUFFIX)):
            path = getattr(self, file_field)
            if path is None:
                continue
            url_field = file_field.removesuffix(COMPANION_FILE_SUFFIX) + "_url"
            variable, url_variable = self.variable_name(file_field), self.variable_name(url_field)
            password = read_password_file(path, variable)
            url = getattr(self, url_field)
            if not url:
                raise ValueError(f"{variable} is set but {url_variable} is empty")
            try:
                url = with_password(url, password)
            except ValueError as exc:
                raise ValueError(f"{url_variable} {exc}: it cannot take the password of {variable}") from None
            # Frozen for everyone else; this is still the config's own construction.
            object.__setattr__(self, url_field, url)
        return self

    @classmethod
    def variable_name(cls, field_name: str) -> str:
        """The environment variable a field is documented as: its first alias, else its name."""
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, AliasChoices):
            alias = alias.choices[0]
        return (alias if isinstance(alias, str) else field_name).upper()

    @property
    def public_origin(self) -> str:
        """The origin clients reach the services at, as DPoP proofs name it in `htu`."""
        parts = urlsplit(self.dpop_public_origin or self.jwt_issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxy_addresses)

    @field_validator("log_level")
    @classmethod
    def _is_log_level(cls, value: str) -> str:
        if not isinstance(logging.getLevelName(value.upper()), int):
            raise ValueError(f"{value!r} is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
        return value

    @field_validator("jwt_issuer", "jwt_audience")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @classmethod
    def from_env(cls) -> Self:
        try:
            return cls()  # pydantic-settings reads the environment here, and only here
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" if err["loc"] else err["msg"]
                for err in exc.errors()
            )
            raise ConfigError(f"{cls.__name__}: invalid environment: {problems}") from None
