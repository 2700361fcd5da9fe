"""Build the board service app: its context first, then the Flask app around it."""

from __future__ import annotations

from flask import Flask

from board_service.config import BoardConfig
from board_service.context import BoardContext
from board_service.posts import PostStore
from board_service.routes import ERRORS, bp
from shared.access_tokens import AccessTokenVerifier
from shared.app_wiring import create_resource_service_app
from shared.database import create_database_engine


def build_app(config: BoardConfig | None = None) -> Flask:
    config = config or BoardConfig.from_env()
    engine = create_database_engine(config.database_url)
    context = BoardContext(
        config=config, verifier=AccessTokenVerifier.from_config(config), engine=engine, posts=PostStore(engine)
    )
    app = create_resource_service_app("board_service", context, domain_errors=ERRORS)
    app.register_blueprint(bp)
    return app
