"""The profile service: a name and a bio per user, keyed by the access token's subject.

Run with gunicorn: `gunicorn 'profile_service:create_app()'`. It verifies access tokens itself
with the public keys and never calls the auth service.
"""

from __future__ import annotations

from flask import Flask

from profile_service.config import ProfileConfig
from profile_service.profiles import ProfileStore
from profile_service.routes import bp
from shared.access_tokens import AccessTokenVerifier
from shared.app_wiring import create_service_app
from shared.database import DATABASE_UNAVAILABLE_ERRORS, create_database_engine, ping


def create_app(config: ProfileConfig | None = None) -> Flask:
    """Build the profile service app from `config`, or from the environment."""
    config = config or ProfileConfig.from_env()
    engine = create_database_engine(config.database_url)
    profiles = ProfileStore(engine)
    profiles.create_schema()
    verifier = AccessTokenVerifier.from_config(config)

    app = create_service_app(
        "profile_service", config,
        readiness_checks={
            "database": lambda: ping(engine),
            "keys": lambda: None if len(verifier.keys) else "no public keys",
        },
        unavailable_errors=DATABASE_UNAVAILABLE_ERRORS,
    )
    app.extensions.update(profiles=profiles, engine=engine, access_token_verifier=verifier)
    app.register_blueprint(bp)
    return app
