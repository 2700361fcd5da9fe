"""The whole stack, started the `make run` way once for the e2e module that asks for it."""

from __future__ import annotations

import pytest

from tests.support.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    # Short-lived access tokens so the tests can watch them expire; no clock leeway.
    running = Stack(tmp_path_factory.mktemp("stack"), ACCESS_TOKEN_TTL="2", JWT_LEEWAY="0").start()
    yield running
    running.stop()
