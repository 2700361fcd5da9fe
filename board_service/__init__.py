"""The board service: a bulletin board of posts, written by callers with a valid access token.

Run with gunicorn: `gunicorn 'board_service:create_app()'`.
"""

from __future__ import annotations

from flask import Flask

from board_service.boards import BoardStore
from board_service.config import BoardConfig
from board_service.routes import bp
from shared.app_wiring import create_resource_service_app
from shared.database import create_database_engine


def create_app(config: BoardConfig | None = None) -> Flask:
    """Build the board service app from `config`, or from the environment."""
    config = config or BoardConfig.from_env()
    engine = create_database_engine(config.database_url)
    boards = BoardStore(engine)
    app = create_resource_service_app("board_service", config, engine)
    app.extensions["boards"] = boards
    app.register_blueprint(bp)
    return app
