"""The key-compromise drill from SECURITY.md, run as its commands: every old token stops working,
at profile and board without restarting them (the revocation feed and the JWKS re-read)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.auth_service.conftest import CHEAP_ARGON2, PASSWORD
from tests.support.processes import REPO, ServiceProcess
from tests.support.workers import answers_from_every_worker

CALLS = {
    "profile_service": ("GET", "/api/profiles/me", None),
    "board_service": ("POST", "/api/boards", {"title": "drill", "content": "probe"}),
}


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "auth_service", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_rotate_drop_old_and_revoke_all_sessions(tmp_path: Path, keys_dir: Path, redis_url: str):
    keys = tmp_path / "keys"
    shutil.copytree(keys_dir, keys)
    env = {
        "APP_ENV": "test",
        "AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/auth.db",
        "REDIS_URL": redis_url,
        "SIGNING_KEY_PATH": str(keys / "signing.pem"),
        "JWKS_PATH": str(keys / "jwks.json"),
        "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path}/profile.db",
        "BOARD_DATABASE_URL": f"sqlite:///{tmp_path}/board.db",
        **{k.upper(): str(v) for k, v in CHEAP_ARGON2.items()},
    }
    auth = ServiceProcess("auth_service", env, tmp_path, workers=1).start()
    resource_env = {**env, "JWKS_URL": f"{auth.url}/.well-known/jwks.json", "REVOCATION_FEED_URL": redis_url}
    services = {package: ServiceProcess(package, resource_env, tmp_path, workers=2).start() for package in CALLS}

    def call(package: str, token: str) -> requests.Response:
        method, path, body = CALLS[package]
        return requests.request(
            method,
            f"{services[package].url}{path}",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )

    try:
        credentials = {"email": "drill@example.com", "password": PASSWORD}
        requests.post(f"{auth.url}/api/auth/signup", json={**credentials, "name": "Drill"})
        login = requests.post(f"{auth.url}/api/auth/login", json=credentials)
        old_access, old_refresh = login.json()["access_token"], login.cookies["refresh_token"]
        for package in CALLS:
            assert call(package, old_access).status_code in (200, 201)
        pids = {package: service.process.pid for package, service in services.items()}

        # The drill, exactly as SECURITY.md lists it: only auth restarts.
        rotated = _run(env, "keys", "rotate", "--dir", str(keys), "--drop-old")
        assert "signing with new key" in rotated and "announced 1 withdrawn key" in rotated
        assert "ended 1 sessions" in _run(env, "sessions", "revoke-all")
        auth.stop()
        auth.start()

        for package, service in services.items():
            deadline = time.monotonic() + 2
            while call(package, old_access).status_code != 401:
                assert time.monotonic() < deadline, f"{package} still accepts a token of the withdrawn key"
                time.sleep(0.05)
            method, path, body = CALLS[package]
            for pid, answers in answers_from_every_worker(
                method, f"{service.url}{path}", {"Authorization": f"Bearer {old_access}"}, service.log, json_body=body
            ).items():
                assert [a.json()["code"] for a in answers] == ["invalid_token"] * len(answers), (package, pid)
            assert service.process.pid == pids[package]  # not restarted
        refused = requests.post(f"{auth.url}/api/auth/refresh", headers={"Cookie": f"refresh_token={old_refresh}"})
        assert refused.status_code == 401
        assert len(requests.get(f"{auth.url}/.well-known/jwks.json").json()["keys"]) == 1

        fresh = requests.post(f"{auth.url}/api/auth/login", json=credentials).json()["access_token"]
        for package in CALLS:
            assert call(package, fresh).status_code in (200, 201), package
    finally:
        auth.stop()
        for service in services.values():
            service.stop()
