"""Typed configuration read from the environment once, failing fast with a clear message."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator
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
        raise ValueError(f"{value!r} is not a database URL like sqlite:///var/app.db or postgresql://...") from None
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
    revocation_feed_stream: str = "auth:revocations"
    # Verified tokens remembered until they expire (0 turns the cache off, e.g. to measure it).
    verified_token_cache_size: int = Field(10_000, ge=0)
    # How many proxies in front of the service append to X-Forwarded-For (1 behind the gateway),
    # believed only on connections from these addresses (comma-separated IPs or CIDR blocks).
    trusted_proxy_hops: int = Field(0, ge=0, le=5)
    trusted_proxy_addresses: str = ""
    max_body_bytes: int = Field(1024 * 1024, ge=1024)

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
                f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"{cls.__name__}: invalid environment: {problems}") from None
