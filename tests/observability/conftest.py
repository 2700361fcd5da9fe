"""The stack the observability tests scrape: `make run`'s way, with short token lifetimes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("stack"),
        ACCESS_TOKEN_TTL="2",
        JWT_LEEWAY="0",
        LOGIN_MAX_FAILURES="3",
        JWKS_REFRESH_INTERVAL="0.5",
        # Sync workers: each request is a new connection from the gateway, which either worker may
        # accept (gthread keeps nginx's connections alive, often all on one worker).
        GUNICORN_THREADS="1",
    ).start()
    yield running
    running.stop()
