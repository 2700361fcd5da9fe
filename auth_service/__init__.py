"""The auth service: accounts, sessions with rotating refresh tokens, and the signing key.

Run with gunicorn: `gunicorn 'auth_service:create_app()'`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from auth_service.config import AuthConfig


def create_app(config: AuthConfig | None = None) -> Flask:
    """Build the auth service app from `config`, or from the environment."""
    # Imported here, so that importing the package (`python -m auth_service keys`) loads no web stack.
    from auth_service.app import build_app

    return build_app(config)
