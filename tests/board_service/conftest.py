"""Fixtures for the board service: an app on a real database, a client, and authors with real tokens."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from board_service import create_app
from board_service.config import BoardConfig
from board_service.context import BoardContext
from board_service.migrations import HISTORY
from tests.support.schemas import migrate
from tests.support.tokens import TokenFactory


@pytest.fixture
def app(database_url: str, keys_dir: Path) -> Iterator[Flask]:
    migrate(database_url, HISTORY)
    app = create_app(BoardConfig(database_url=database_url, jwks_path=keys_dir / "jwks.json", app_env="test"))
    yield app
    BoardContext.of(app).engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Author:
    """A signed-in user who writes posts through the HTTP interface with a real access token."""

    def __init__(self, client: FlaskClient, tokens: TokenFactory, name: str) -> None:
        self.client = client
        self.tokens = tokens
        self.id = "u-" + secrets.token_hex(8)
        self.name = name
        self.headers = tokens.bearer(sub=self.id, name=name)
        self.published = 0

    def publish(self, title: str | None = None, content: str = "Hello, board.") -> dict:
        self.published += 1
        response = self.client.post(
            "/api/boards",
            headers=self.headers,
            json={"title": title or f"{self.name}'s post {self.published}", "content": content},
        )
        assert response.status_code == 201, response.json
        return response.json


@pytest.fixture
def alice(client: FlaskClient, tokens: TokenFactory) -> Author:
    return Author(client, tokens, "Alice")


@pytest.fixture
def bob(client: FlaskClient, tokens: TokenFactory) -> Author:
    return Author(client, tokens, "Bob")


def assert_problem(response, status: int, code: str) -> dict:
    """Check that `response` is a problem document with this status and code, and return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] and body["title"] and body["detail"]
    return body
