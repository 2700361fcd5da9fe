"""Concurrent first accesses create one profile: threads in one app, and gunicorn worker processes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from profile_service.profiles import profiles
from shared.database import create_database_engine
from tests.support.processes import ServiceProcess
from tests.support.tokens import TokenFactory

pytestmark = pytest.mark.servers  # starts processes of its own

THREADS = 10


def row_count(database_url: str, user_id: str) -> int:
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(func.count()).select_from(profiles).where(profiles.c.user_id == user_id)
            ).scalar_one()
    finally:
        engine.dispose()


def all_at_once(call: Callable[[int], tuple[int, dict]]) -> list[tuple[int, dict]]:
    """Run `call(i)` in THREADS threads released together by a barrier."""
    barrier = threading.Barrier(THREADS)

    def run(i: int) -> tuple[int, dict]:
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


def test_concurrent_first_get_creates_one_profile(app: Flask, database_url: str, tokens: TokenFactory) -> None:
    headers = tokens.bearer(sub="racer", name="Racer")

    def get(_: int) -> tuple[int, dict]:
        response = app.test_client().get("/api/profiles/me", headers=headers)
        return response.status_code, response.get_json()

    results = all_at_once(get)
    assert [status for status, _ in results] == [200] * THREADS
    assert all(body == results[0][1] for _, body in results)
    assert row_count(database_url, "racer") == 1


def test_concurrent_first_patch_creates_one_profile(app: Flask, database_url: str, tokens: TokenFactory) -> None:
    headers = tokens.bearer(sub="patcher", name="Patcher")

    def patch(i: int) -> tuple[int, dict]:
        response = app.test_client().patch("/api/profiles/me", headers=headers, json={"bio": f"bio {i}"})
        return response.status_code, response.get_json()

    results = all_at_once(patch)
    assert [status for status, _ in results] == [200] * THREADS
    final = app.test_client().get("/api/profiles/me", headers=headers).get_json()
    assert final["bio"] in {body["bio"] for _, body in results}
    assert row_count(database_url, "patcher") == 1


@pytest.fixture
def service(database_url: str, keys_dir: Path, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        "profile_service",
        {
            "PROFILE_DATABASE_URL": database_url,
            "JWKS_PATH": str(keys_dir / "jwks.json"),
            "APP_ENV": "test",
        },
        tmp_path,
        workers=2,
        threads=4,
    )
    try:
        yield process.start()
    finally:
        process.stop()


def test_gunicorn_workers_racing_create_one_profile(
    service: ServiceProcess, database_url: str, tokens: TokenFactory
) -> None:
    assert requests.get(f"{service.url}/readyz", timeout=5).status_code == 200, service.log()
    headers = {**tokens.bearer(sub="process-racer", name="Racer"), "Connection": "close"}

    def get(_: int) -> tuple[int, dict]:
        response = requests.get(f"{service.url}/api/profiles/me", headers=headers, timeout=10)
        return response.status_code, response.json()

    results = all_at_once(get)
    assert [status for status, _ in results] == [200] * THREADS, service.log()
    assert all(body == results[0][1] for _, body in results)
    assert row_count(database_url, "process-racer") == 1
    response = requests.get(f"{service.url}/api/profiles/nobody", timeout=5)
    assert response.status_code == 404 and response.headers["Content-Type"] == "application/problem+json"
