"""The profile service: a name and a bio per user, keyed by the access token's subject.

Run with gunicorn: `gunicorn 'profile_service:create_app()'`. It verifies access tokens itself
with the public keys and never calls the auth service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from profile_service.config import ProfileConfig


def create_app(config: ProfileConfig | None = None) -> Flask:
    """Build the profile service app from `config`, or from the environment."""
    # Imported here, so that importing the package (`python -m profile_service db`) loads no web stack.
    from profile_service.app import build_app

    return build_app(config)
