"""The board service: a bulletin board of posts, written by callers with a valid access token.

Run with gunicorn: `gunicorn 'board_service:create_app()'`.
"""

from __future__ import annotations

from flask import Flask

from board_service.boards import BoardStore
from board_service.config import BoardConfig
from board_service.routes import bp
from shared.access_tokens import AccessTokenVerifier
from shared.app_wiring import create_service_app
from shared.database import DATABASE_UNAVAILABLE_ERRORS, create_database_engine, ping


def create_app(config: BoardConfig | None = None) -> Flask:
    config = config or BoardConfig.from_env()
    engine = create_database_engine(config.database_url)
    boards = BoardStore(engine)
    boards.create_schema()
    # No keys at start-up is not fatal: the JWKS URL may bring them later, and /readyz says so.
    verifier = AccessTokenVerifier.from_config(config)

    app = create_service_app(
        "board_service", config,
        readiness_checks={
            "database": lambda: ping(engine),
            "keys": lambda: None if len(verifier.keys) else "no public keys",
        },
        unavailable_errors=DATABASE_UNAVAILABLE_ERRORS,
    )
    app.extensions.update(boards=boards, engine=engine, access_token_verifier=verifier)
    app.register_blueprint(bp)
    return app
