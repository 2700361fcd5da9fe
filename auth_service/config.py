"""Auth service settings, from the environment (see docs/API.md's Configuration section)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from shared.config import DatabaseUrl, PasswordFile, RedisUrl, ServiceConfig


class AuthConfig(ServiceConfig):
    database_url: DatabaseUrl = Field(
        "sqlite:///var/auth.db", validation_alias=AliasChoices("AUTH_DATABASE_URL", "database_url")
    )
    database_password_file: PasswordFile = Field(
        None, validation_alias=AliasChoices("AUTH_DATABASE_PASSWORD_FILE", "database_password_file")
    )
    # One of three topologies (shared/redis_client.py): redis://, redis+sentinel://, redis+cluster://.
    redis_url: RedisUrl = "redis://127.0.0.1:6379/0"
    redis_password_file: PasswordFile = None
    redis_prefix: str = Field("auth:", pattern=r"^[^{}]*$")  # braces would change the keys' hash tags
    # Replicas that must confirm each session write before the client hears of it (Redis WAIT);
    # unset: 1 behind Sentinel or on a Cluster with replicas, 0 on a standalone Redis.
    redis_min_replicas_ack: int | None = Field(None, ge=0, le=16)
    redis_replica_ack_timeout_ms: int = Field(500, ge=1, le=10_000)  # shared.redis_client.DEFAULT_ACK_TIMEOUT_MS
    signing_key_path: Path = Path("var/keys/signing.pem")
    # The key refresh tokens are made with (auth_service/sessions.py); unset: refresh.key beside
    # the signing key, where `keys init` creates it.
    refresh_key_path: Path | None = None
    access_token_ttl: int = Field(3600, ge=1, le=86400)
    refresh_token_ttl: int = Field(1209600, ge=1)
    refresh_reuse_grace: int = Field(10, ge=0, le=300)
    # The revocation feed keeps events for ACCESS_TOKEN_TTL + JWT_LEEWAY + this margin (seconds).
    revocation_feed_margin: int = Field(60, ge=0)
    gateway_port: int = Field(8080, ge=1, le=65535)
    # Comma-separated origins allowed to call the cookie endpoints; empty means the gateway's own.
    allowed_origins: str = ""
    login_max_failures: int = Field(10, ge=1)
    # Across all addresses, for browsers without the account's device cookie (see throttle.py).
    login_account_max_failures: int = Field(100, ge=1)
    login_failure_window: int = Field(900, ge=1)
    login_device_cookie_ttl: int = Field(365 * 86400, ge=60)
    # Live sessions one user may have; a login past it ends the user's oldest session.
    max_sessions_per_user: int = Field(50, ge=1, le=10_000)
    # DPoP (RFC 9449, auth_service/dpop.py): proofs must carry a server nonce (DPoP-Nonce); a login
    # without a proof is refused; access tokens of bound sessions carry `cnf.jkt` (token_type DPoP).
    dpop_nonce: bool = False
    require_bound_sessions: bool = False
    access_token_binding: Literal["bearer", "dpop"] = "bearer"  # noqa: S105 - a mode, not a secret
    # argon2id cost; argon2-cffi's defaults (RFC 9106 low-memory profile) unless overridden.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_cost: int = Field(65536, ge=8)
    argon2_parallelism: int = Field(4, ge=1)
    # Admission control for argon2 (auth_service/passwords.py HashSlots), per process: hashes at once,
    # requests waiting for one, and how long they wait; the rest get 503 password_hashing_busy.
    password_hash_concurrency: int = Field(1, ge=1, le=256)
    password_hash_queue: int = Field(1, ge=0, le=1024)
    password_hash_queue_timeout_ms: int = Field(250, ge=0, le=60_000)

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: str) -> str:
        for origin in filter(None, (o.strip() for o in value.split(","))):
            if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise ValueError(f"{origin!r} is not an origin like https://example.com")
        return value

    @model_validator(mode="after")
    def _key_exists_outside_development(self) -> AuthConfig:
        if self.app_env == "production" and not self.signing_key_path.exists():
            raise ValueError(f"SIGNING_KEY_PATH {self.signing_key_path} does not exist")
        if self.app_env == "production" and not self.refresh_key_file.exists():
            raise ValueError(f"REFRESH_KEY_PATH {self.refresh_key_file} does not exist")
        return self

    @property
    def refresh_key_file(self) -> Path:
        return self.refresh_key_path or self.signing_key_path.parent / "refresh.key"

    @property
    def origins(self) -> frozenset[str]:
        listed = {o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()}
        return frozenset(listed or {f"http://localhost:{self.gateway_port}", f"http://127.0.0.1:{self.gateway_port}"})

    @property
    def revocation_window(self) -> int:
        """How long a revocation can still matter: until the last token it covers has expired."""
        return self.access_token_ttl + self.jwt_leeway + self.revocation_feed_margin

    @property
    def revocation_stream(self) -> str:
        return f"{self.redis_prefix}revocations"
