"""Build the auth service app: its context first, then the Flask app around it."""

from __future__ import annotations

from flask import Flask

from auth_service.accounts import Accounts
from auth_service.config import AuthConfig
from auth_service.context import AuthContext
from auth_service.devices import LoginDevices
from auth_service.dpop import CookieProofs, ProofNonces, RedisReplayCache
from auth_service.keys import load_refresh_key
from auth_service.passwords import HashSlots, Passwords
from auth_service.routes import ERRORS, bp, well_known
from auth_service.sessions import SessionStore
from auth_service.throttle import LoginThrottle
from auth_service.tokens import TokenIssuer
from auth_service.users import UserStore
from shared.access_tokens import AccessTokenVerifier, JwksKeys
from shared.app_wiring import create_service_app
from shared.config import ConfigError
from shared.database import DATABASE_UNAVAILABLE_ERRORS, create_database_engine, ping
from shared.dpop import ProofVerifier
from shared.redis_client import REDIS_UNAVAILABLE_ERRORS, RedisClient, ReplicatedWrites, create_redis_client
from shared.revocations import RevocationPublisher


def connect_redis(config: AuthConfig) -> tuple[RedisClient, ReplicatedWrites]:
    """Auth's Redis client (any topology) and the replica-confirmed writes made through it."""
    client = create_redis_client(config.redis_url)
    return client, ReplicatedWrites(
        client, min_replicas=config.redis_min_replicas_ack, timeout_ms=config.redis_replica_ack_timeout_ms
    )


def build_app(config: AuthConfig | None = None) -> Flask:
    config = config or AuthConfig.from_env()
    if not config.signing_key_path.exists():
        raise ConfigError(f"SIGNING_KEY_PATH: signing key {config.signing_key_path} is missing: run `make keys`")
    if not config.refresh_key_file.exists():
        raise ConfigError(f"REFRESH_KEY_PATH: refresh key {config.refresh_key_file} is missing: run `make keys`")

    engine = create_database_engine(config.database_url)
    users = UserStore(engine)
    redis_client, writes = connect_redis(config)
    refresh_key = load_refresh_key(config.refresh_key_file)
    issuer = TokenIssuer(
        config.signing_key_path,
        config.jwks_path,
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        ttl=config.access_token_ttl,
    )
    accounts = Accounts(
        users=users,
        passwords=Passwords(
            time_cost=config.argon2_time_cost,
            memory_cost=config.argon2_memory_cost,
            parallelism=config.argon2_parallelism,
            slots=HashSlots(
                concurrency=config.password_hash_concurrency,
                queue=config.password_hash_queue,
                wait=config.password_hash_queue_timeout_ms / 1000,
            ),
        ),
        sessions=SessionStore(
            redis_client,
            writes=writes,
            refresh_key=refresh_key,
            prefix=config.redis_prefix,
            ttl=config.refresh_token_ttl,
            reuse_grace=config.refresh_reuse_grace,
            max_per_user=config.max_sessions_per_user,
            ended_ttl=config.revocation_window,
        ),
        throttle=LoginThrottle(
            redis_client,
            prefix=config.redis_prefix,
            max_failures=config.login_max_failures,
            account_max_failures=config.login_account_max_failures,
            window=config.login_failure_window,
        ),
        issuer=issuer,
        devices=LoginDevices(issuer.derive_secret("login-device-cookie")),
        revocations=RevocationPublisher(
            redis_client, stream=config.revocation_stream, window=config.revocation_window, writes=writes
        ),
        bind_access_tokens=config.access_token_binding == "dpop",  # noqa: S105 - a mode, not a secret
    )
    dpop = CookieProofs(
        ProofVerifier(
            public_origin=config.public_origin,
            max_age=config.dpop_proof_max_age,
            leeway=config.jwt_leeway,
            replay=RedisReplayCache(redis_client, config.redis_prefix),
            nonces=ProofNonces(refresh_key, config.dpop_proof_max_age) if config.dpop_nonce else None,
        ),
        require_bound=config.require_bound_sessions,
    )

    # Auth verifies its own Bearer endpoints with the same verifier the resource services use.
    verifier = AccessTokenVerifier(
        JwksKeys(jwks=issuer.jwks),
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        leeway=config.jwt_leeway,
        proofs=ProofVerifier(
            public_origin=config.public_origin, max_age=config.dpop_proof_max_age, leeway=config.jwt_leeway
        ),
    )
    context = AuthContext(
        config=config,
        verifier=verifier,
        accounts=accounts,
        issuer=issuer,
        redis=redis_client,
        engine=engine,
        dpop=dpop,
    )
    app = create_service_app(
        "auth_service",
        context,
        readiness_checks={
            "database": lambda: ping(engine),
            "redis": lambda: None if redis_client.ping() else "no answer to PING",
            "keys": lambda: None if issuer.jwks["keys"] else "no signing key",
        },
        unavailable_errors=REDIS_UNAVAILABLE_ERRORS + DATABASE_UNAVAILABLE_ERRORS,
        domain_errors=ERRORS,
    )
    app.register_blueprint(bp)
    app.register_blueprint(well_known)
    return app
