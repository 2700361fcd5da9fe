"""Build the profile service app: its context first, then the Flask app around it."""

from __future__ import annotations

from flask import Flask

from profile_service.config import ProfileConfig
from profile_service.context import ProfileContext
from profile_service.profiles import ProfileStore
from profile_service.routes import bp
from shared.access_tokens import AccessTokenVerifier
from shared.app_wiring import create_resource_service_app
from shared.database import create_database_engine


def build_app(config: ProfileConfig | None = None) -> Flask:
    config = config or ProfileConfig.from_env()
    engine = create_database_engine(config.database_url)
    context = ProfileContext(
        config=config, verifier=AccessTokenVerifier.from_config(config), engine=engine, profiles=ProfileStore(engine)
    )
    app = create_resource_service_app("profile_service", context)
    app.register_blueprint(bp)
    return app
