"""Typed configuration read from the environment once, failing fast with a clear message."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator
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


class ServiceConfig(BaseSettings):
    """Settings every service shares; each service subclasses it with its own fields.

    Field names are the environment variable names (case-insensitive). Tests build configs
    directly, e.g. `AuthConfig(database_url=...)`, instead of changing the environment.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    app_env: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    jwt_issuer: str = "http://localhost:8080"
    jwt_audience: str = "silent-auth"
    jwt_leeway: int = Field(5, ge=0, le=300)
    # Where resource services find the public keys: the file works while auth is down, the URL
    # brings keys introduced later.
    jwks_path: Path | None = Path("var/keys/jwks.json")
    jwks_url: str | None = None
    jwks_refetch_cooldown: float = Field(30.0, ge=0)
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
            raise ValueError("TRUSTED_PROXY_HOPS needs TRUSTED_PROXY_ADDRESSES: the proxies whose "
                             "X-Forwarded-For may be believed")
        return self

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxy_addresses)

    @classmethod
    def from_env(cls) -> Self:
        try:
            return cls()  # pydantic-settings reads the environment here, and only here
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"{cls.__name__}: invalid environment: {problems}") from None
