"""The profile service: a name and a bio per user, keyed by the access token's subject.

Run with gunicorn: `gunicorn 'profile_service:create_app()'`. It verifies access tokens itself
with the public keys and never calls the auth service.
"""

from __future__ import annotations

from flask import Flask

from profile_service.config import ProfileConfig
from profile_service.profiles import ProfileStore
from profile_service.routes import bp
from shared.app_wiring import create_resource_service_app
from shared.database import create_database_engine


def create_app(config: ProfileConfig | None = None) -> Flask:
    """Build the profile service app from `config`, or from the environment."""
    config = config or ProfileConfig.from_env()
    engine = create_database_engine(config.database_url)
    profiles = ProfileStore(engine)
    app = create_resource_service_app("profile_service", config, engine)
    app.extensions["profiles"] = profiles
    app.register_blueprint(bp)
    return app
