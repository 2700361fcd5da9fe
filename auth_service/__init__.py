"""The auth service: accounts, sessions with rotating refresh tokens, and the signing key.

Run with gunicorn: `gunicorn 'auth_service:create_app()'`.
"""

from __future__ import annotations

import redis
from flask import Flask
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from auth_service.accounts import Accounts
from auth_service.config import AuthConfig
from auth_service.passwords import Passwords
from auth_service.routes import bp, well_known
from auth_service.sessions import SessionStore
from auth_service.throttle import LoginThrottle
from auth_service.tokens import TokenIssuer
from auth_service.users import UserStore
from shared.access_tokens import AccessTokenVerifier, JwksKeys
from shared.app_wiring import create_service_app
from shared.config import ConfigError
from shared.database import DATABASE_UNAVAILABLE_ERRORS, create_database_engine, ping

REDIS_UNAVAILABLE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# Each attempt at a Redis call gives up after this long, and a failed call is retried once, so a
# gone or frozen Redis costs a request about REDIS_TIMEOUT_SECONDS * (1 + REDIS_RETRIES): 2 s.
REDIS_TIMEOUT_SECONDS = 1.0
REDIS_RETRIES = 1


def create_redis_client(url: str) -> redis.Redis:
    """A pooled client that fails within about two seconds instead of hanging when Redis is gone."""
    # No health_check_interval: its PING on a fresh connection doubles the time a hung Redis costs.
    # One retry covers connections that went stale when Redis restarted.
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_keepalive=True, retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=REDIS_RETRIES),
    )


def create_app(config: AuthConfig | None = None) -> Flask:
    """Build the auth service app from `config`, or from the environment."""
    config = config or AuthConfig.from_env()
    if not config.signing_key_path.exists():
        raise ConfigError(f"SIGNING_KEY_PATH: signing key {config.signing_key_path} is missing: run `make keys`")

    engine = create_database_engine(config.database_url)
    users = UserStore(engine)
    users.create_schema()
    redis_client = create_redis_client(config.redis_url)
    issuer = TokenIssuer(config.signing_key_path, config.jwks_path, issuer=config.jwt_issuer,
                         audience=config.jwt_audience, ttl=config.access_token_ttl)
    accounts = Accounts(
        users=users,
        passwords=Passwords(time_cost=config.argon2_time_cost, memory_cost=config.argon2_memory_cost,
                            parallelism=config.argon2_parallelism),
        sessions=SessionStore(redis_client, prefix=config.redis_prefix, ttl=config.refresh_token_ttl,
                              reuse_grace=config.refresh_reuse_grace),
        throttle=LoginThrottle(redis_client, prefix=config.redis_prefix,
                               max_failures=config.login_max_failures, window=config.login_failure_window),
        issuer=issuer,
    )

    app = create_service_app(
        "auth_service", config,
        readiness_checks={
            "database": lambda: ping(engine),
            "redis": lambda: redis_client.ping() and None,
            "keys": lambda: None if issuer.jwks["keys"] else "no signing key",
        },
        unavailable_errors=REDIS_UNAVAILABLE_ERRORS + DATABASE_UNAVAILABLE_ERRORS,
    )
    app.extensions.update(accounts=accounts, token_issuer=issuer, redis=redis_client, engine=engine)
    # Auth verifies its own Bearer endpoints with the same verifier the resource services use.
    app.extensions["access_token_verifier"] = AccessTokenVerifier(
        JwksKeys(jwks=issuer.jwks), issuer=config.jwt_issuer, audience=config.jwt_audience,
        leeway=config.jwt_leeway,
    )
    app.register_blueprint(bp)
    app.register_blueprint(well_known)
    return app
