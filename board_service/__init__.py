"""The board service: a bulletin board of posts, written by callers with a valid access token.

Run with gunicorn: `gunicorn 'board_service:create_app()'`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from board_service.config import BoardConfig


def create_app(config: BoardConfig | None = None) -> Flask:
    """Build the board service app from `config`, or from the environment."""
    # Imported here, so that importing the package (`python -m board_service db`) loads no web stack.
    from board_service.app import build_app

    return build_app(config)
