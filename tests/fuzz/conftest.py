"""A running stack and a real access token for fuzzing every service's documented API."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.stack import Stack


@pytest.fixture(scope="session")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory):
    running = Stack(tmp_path_factory.mktemp("fuzz-stack")).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def access_token(fuzz_stack: Stack) -> str:
    email = f"fuzzer-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": "fuzzing password"}
    requests.post(f"{fuzz_stack.url}/api/auth/signup", json={**credentials, "name": "Fuzzer"}).raise_for_status()
    response = requests.post(f"{fuzz_stack.url}/api/auth/login", json=credentials)
    response.raise_for_status()
    return response.json()["access_token"]
