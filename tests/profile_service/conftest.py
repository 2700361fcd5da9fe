"""Fixtures of the profile service tests: an app on each database, and its client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from profile_service import create_app
from profile_service.config import ProfileConfig
from profile_service.context import ProfileContext
from profile_service.migrations import HISTORY
from tests.support.schemas import migrate


@pytest.fixture
def config(database_url: str, keys_dir: Path) -> ProfileConfig:
    return ProfileConfig(database_url=database_url, jwks_path=keys_dir / "jwks.json", app_env="test")


@pytest.fixture
def app(config: ProfileConfig) -> Iterator[Flask]:
    migrate(config.database_url, HISTORY)
    app = create_app(config)
    yield app
    ProfileContext.of(app).engine.dispose()  # let the PostgreSQL fixture drop its database


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
